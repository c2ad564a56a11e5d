// VERTEX_LIGHT (define): the skin's light terms per vertex, interpolated. The viewport's mesh
// has ~15k vertices for ~100k shaded pixels, so the lighting runs 7x less often than per
// fragment; a software rasteriser (llvmpipe) pays per fragment instruction.
#ifdef VERTEX_LIGHT
#include "common.glsl"
out vec3 v_diffuse;
out vec3 v_added;
#endif
layout(location = 0) in vec3 in_pos;
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec2 in_uv;
#ifdef VERTEX_LIGHT
layout(location = 3) in float in_occlusion;   // core/render/occlusion.py; 1 = open
#endif
uniform mat4 u_view;
uniform mat4 u_proj;
out vec3 v_world;
out vec3 v_normal;
out vec2 v_uv;
out vec3 v_view_pos;
void main() {
    vec4 vp = u_view * vec4(in_pos, 1.0);
    v_world = in_pos;
    v_normal = in_normal;
    v_uv = in_uv;
    v_view_pos = vp.xyz;
#ifdef VERTEX_LIGHT
    shade_terms(normalize(in_normal), normalize(-vp.xyz), v_diffuse, v_added);
    // A cavity (nostril, mouth corner, ear fold) sees little of the lights: some bounce stays.
    v_diffuse *= mix(0.3, 1.0, in_occlusion);
    v_added *= in_occlusion;
#endif
    gl_Position = u_proj * vp;
}
