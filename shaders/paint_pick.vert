// Projection painting's pick pass (core/paint/projection.py): the posed mesh from the current
// view, each pixel carrying the neutral (rest) position and UV of the surface it shows.
layout(location = 0) in vec3 in_pos;
layout(location = 1) in vec3 in_rest;
layout(location = 2) in vec2 in_uv;
uniform mat4 u_view_proj;
out vec3 v_rest;
out vec2 v_uv;
void main() {
    v_rest = in_rest;
    v_uv = in_uv;
    gl_Position = u_view_proj * vec4(in_pos, 1.0);
}
