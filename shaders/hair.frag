// Hair: Kajiya-Kay strand lighting (1989) along a strand tangent field, two highlights
// shifted toward root and tip (Scheuermann 2004: the primary white one, the secondary tinted
// by the hair and broken up by noise), over a strand texture whose alpha thins the strands out
// at the hairline and the tips (alpha test: no sorting). VIEW is a define as in mesh.frag.
#include "common.glsl"
in vec3 v_normal;
in vec3 v_tangent;
in vec2 v_uv;
in vec2 v_attr;
in vec3 v_view_pos;
uniform sampler2D u_strands;       // R brightness, G grey selector, B noise, A coverage
uniform vec3 u_hair_colour;        // sRGB
uniform float u_grey;              // share of grey strands
uniform float u_shine;             // highlight strength of the style
uniform vec3 u_grey_colour;
uniform vec3 u_albedo;             // the shaded (clay) view
out vec4 frag;

float strand_spec(vec3 t, vec3 h, float e) {
    float th = dot(t, h);
    return smoothstep(-1.0, 0.0, th) * pow(sqrt(max(1.0 - th * th, 0.0)), e);
}

void main() {
    vec4 s = texture(u_strands, v_uv);
    if (s.a * v_attr.x < 0.5) discard;
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
#if VIEW == 2
    frag = vec4(n * 0.5 + 0.5, 1.0);
#else
    float occ = v_attr.y;
#if VIEW == 1
    // The grey selector is mip-averaged at a distance: a soft threshold blends there, picks
    // single strands up close.
    float grey = smoothstep(s.g - 0.15, s.g + 0.15, u_grey * 1.3 - 0.15);
    vec3 base = mix(u_hair_colour, u_grey_colour * (0.9 + 0.2 * s.b), grey);
    float b = s.r * 1.25;
    vec3 albedo = base * base * b * b;
    vec3 tint = base * base;
#else
    vec3 albedo = u_albedo * 0.55;   // clay, a little darker than skin
    vec3 tint = albedo;
#endif
    vec3 nv = normalize(u_view_rot * n);
    vec3 tv = normalize(u_view_rot * v_tangent);
    vec3 v = normalize(-v_view_pos);
#if LIGHT_MODE == 1
    vec3 diffuse = max(sh_irradiance(n), vec3(0.0));
    vec3 l = normalize(vec3(0.3, 0.6, 1.0));
    vec3 lc = vec3(0.9);
#else
    vec3 l = u_key_dir;
    vec3 lc = u_key_col;
    // Wrapped diffuse: light scatters through a volume of strands.
    vec3 diffuse = u_ambient + u_key_col * clamp(0.25 + 0.75 * dot(nv, l), 0.0, 1.0)
                 + u_fill_col * clamp(0.25 + 0.75 * dot(nv, u_fill_dir), 0.0, 1.0);
#endif
    vec3 h = normalize(l + v);
    float jitter = s.b - 0.5;
    vec3 t1 = normalize(tv + nv * (-0.10 + 0.15 * jitter));
    vec3 t2 = normalize(tv + nv * (0.12 + 0.15 * jitter));
    float lit = clamp(0.2 + dot(nv, l), 0.0, 1.0);
    float spec1 = 0.22 * u_shine * strand_spec(t1, h, 90.0);
    float spec2 = 0.55 * u_shine * strand_spec(t2, h, 28.0) * smoothstep(0.3, 0.8, s.b);
    vec3 c = albedo * diffuse * occ + lc * lit * occ * (spec1 * vec3(1.0) + spec2 * tint * 2.0);
    float g = 1.0 - max(dot(nv, v), 0.0);
    c += g * g * g * max(dot(nv, u_rim_dir) + 0.3, 0.0) * u_rim_col * 0.5 * sqrt(albedo);
    frag = vec4(sqrt(clamp(c, 0.0, 1.0)), 1.0);
#endif
}
