// Hair fragments: the strand texture (R brightness, G grey selector, B highlight noise,
// A coverage) over the per-vertex strand lighting of hair.vert; the alpha test thins strands out
// at the hairline and the tips (no sorting needed). VIEW is a define as in mesh.frag.
#include "common.glsl"
in vec3 v_normal;
in vec2 v_uv;
in float v_fade;
in vec3 v_diffuse;
in vec2 v_spec;
in float v_rim;
uniform sampler2D u_strands;
uniform vec3 u_hair_colour;        // display RGB
uniform float u_grey;              // share of grey strands
uniform vec3 u_grey_colour;
uniform vec3 u_albedo;             // the shaded (clay) view
out vec4 frag;

void main() {
    vec4 s = texture(u_strands, v_uv);
    if (s.a * v_fade < 0.5) discard;
#if VIEW == 2
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    frag = vec4(n * 0.5 + 0.5, 1.0);
#else
#if VIEW == 1
    // The grey selector is mip-averaged at a distance: a soft threshold blends there and picks
    // single strands up close.
    float grey = smoothstep(s.g - 0.15, s.g + 0.15, u_grey * 1.3 - 0.15);
    vec3 base = mix(u_hair_colour, u_grey_colour * (0.9 + 0.2 * s.b), grey);
    float b = s.r * 1.25;
    vec3 tint = base * base;
    vec3 albedo = tint * b * b;
#else
    vec3 albedo = u_albedo * 0.55 * (0.6 + 0.5 * s.r);   // clay, a little darker than skin
    vec3 tint = albedo;
#endif
    float sparkle = 0.4 + 1.2 * s.b;                       // strands catch the light unevenly
    vec3 c = albedo * v_diffuse + (v_spec.x * sparkle) * vec3(1.0) + (v_spec.y * sparkle * 2.0) * tint
           + v_rim * u_rim_col * sqrt(albedo);
    frag = vec4(sqrt(clamp(c, 0.0, 1.0)), 1.0);
#endif
}
