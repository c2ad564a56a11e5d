// Hair shell: positions, normals and strand tangents in world space (posed on the CPU).
// The lighting is evaluated here, per vertex: Kajiya-Kay (1989) strand highlights along the
// tangent, two lobes shifted toward root and tip (Scheuermann 2004: a white primary, a tinted
// secondary), wrapped diffuse for a volume of strands. The strand field is smooth across a
// triangle, and llvmpipe pays per fragment, so the fragment shader only adds the strand texture.
#include "common.glsl"
layout(location = 0) in vec3 in_pos;
layout(location = 1) in vec3 in_normal;
layout(location = 2) in vec3 in_tangent;
layout(location = 3) in vec2 in_uv;
layout(location = 4) in vec2 in_attr;     // fade (hairline, tips), occlusion
uniform mat4 u_view;
uniform mat4 u_proj;
uniform float u_shine;                    // highlight strength of the style
out vec3 v_normal;
out vec2 v_uv;
out float v_fade;
out vec3 v_diffuse;                       // irradiance times occlusion
out vec2 v_spec;                          // primary, secondary highlight
out float v_rim;

float strand_spec(vec3 t, vec3 h, float e) {
    float th = dot(t, h);
    return smoothstep(-1.0, 0.0, th) * pow(sqrt(max(1.0 - th * th, 0.0)), e);
}

void main() {
    vec4 vp = u_view * vec4(in_pos, 1.0);
    v_normal = in_normal;
    v_uv = in_uv;
    v_fade = in_attr.x;
    float occ = in_attr.y;
    vec3 nv = normalize(u_view_rot * in_normal);
    vec3 tv = normalize(u_view_rot * in_tangent);
    vec3 v = normalize(-vp.xyz);
#if LIGHT_MODE == 1
    vec3 diffuse = max(sh_irradiance(in_normal), vec3(0.0));
    vec3 l = normalize(vec3(0.3, 0.6, 1.0));
    float lc = 0.9;
#else
    vec3 l = u_key_dir;
    float lc = dot(u_key_col, vec3(0.3333));
    vec3 diffuse = u_ambient + u_key_col * clamp(0.25 + 0.75 * dot(nv, l), 0.0, 1.0)
                 + u_fill_col * clamp(0.25 + 0.75 * dot(nv, u_fill_dir), 0.0, 1.0);
#endif
    v_diffuse = diffuse * occ;
    vec3 h = normalize(l + v);
    float lit = clamp(0.2 + dot(nv, l), 0.0, 1.0) * occ * lc * u_shine;
    v_spec = lit * vec2(0.16 * strand_spec(normalize(tv - 0.1 * nv), h, 64.0),
                        0.5 * strand_spec(normalize(tv + 0.12 * nv), h, 18.0));
    float g = 1.0 - max(dot(nv, v), 0.0);
    v_rim = g * g * g * max(dot(nv, u_rim_dir) + 0.3, 0.0) * 0.5;
    gl_Position = u_proj * vp;
}
