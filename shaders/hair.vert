// Hair shell: positions, normals and strand tangents in world space (posed on the CPU).
layout(location = 0) in vec3 in_pos;
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec3 in_tangent;
layout(location = 3) in vec2 in_uv;
layout(location = 4) in vec2 in_attr;     // fade (hairline, tips), occlusion
uniform mat4 u_view;
uniform mat4 u_proj;
out vec3 v_normal;
out vec3 v_tangent;
out vec2 v_uv;
out vec2 v_attr;
out vec3 v_view_pos;
void main() {
    vec4 vp = u_view * vec4(in_pos, 1.0);
    v_normal = in_normal;
    v_tangent = in_tangent;
    v_uv = in_uv;
    v_attr = in_attr;
    v_view_pos = vp.xyz;
    gl_Position = u_proj * vp;
}
