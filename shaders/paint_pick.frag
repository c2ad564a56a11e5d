in vec3 v_rest;
in vec2 v_uv;
layout(location = 0) out vec4 f_rest;
layout(location = 1) out vec4 f_uv;
void main() {
    f_rest = vec4(v_rest, 1.0);
    f_uv = vec4(v_uv, 0.0, 1.0);
}
