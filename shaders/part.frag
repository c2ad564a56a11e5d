// Part meshes (core.head.parts.PartMesh): eyes, teeth, gums, tongue, mouth cavity. Lit like the
// skin, with the part's own base colour, optional texture and specular lobe (u_specular and
// u_shininess are set per part: a sharp corneal highlight, wet tongue, dull cavity).
#include "common.glsl"
in vec3 v_world;
in vec3 v_normal;
in vec2 v_uv;
in vec3 v_view_pos;
uniform vec3 u_albedo;             // linear base colour
uniform int u_has_texture;
uniform sampler2D u_texture;
out vec4 frag;
void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    vec3 v = normalize(-v_view_pos);
#if VIEW == 2
    vec3 c = n * 0.5 + 0.5;
#else
    vec3 albedo = u_albedo;
    if (u_has_texture == 1) {
        vec3 t = texture(u_texture, v_uv).rgb;
        albedo *= t * t;
    }
    vec3 c = shade(albedo, n, v);
#endif
    frag = vec4(c, 1.0);
}
