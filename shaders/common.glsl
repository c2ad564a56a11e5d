// Shared lighting. Lights are given in view space so they follow the orbit camera: an artist
// turning the head sees every side under the same key/fill/rim setup, which is what makes
// shape readable. IBL uses 9 spherical-harmonic coefficients (world space) of an environment.

// LIGHT_MODE (define): 0 = three-point, 1 = image-based (SH9)
#ifndef LIGHT_MODE
#define LIGHT_MODE 0
#endif
uniform vec3 u_key_dir;            // view space, pointing from the surface toward the light
uniform vec3 u_key_col;
uniform vec3 u_fill_dir;
uniform vec3 u_fill_col;
uniform vec3 u_rim_dir;
uniform vec3 u_rim_col;
uniform vec3 u_ambient;
uniform vec3 u_sh[9];              // irradiance SH coefficients (already convolved), world space
uniform float u_specular;          // strength of the Blinn-Phong lobe
uniform float u_shininess;
uniform mat3 u_view_rot;           // world -> view rotation

vec3 sh_irradiance(vec3 n) {
    // Ramamoorthi & Hanrahan 2001 band 0-2 basis, coefficients pre-multiplied by A_l.
    return u_sh[0] * 0.282095
         + u_sh[1] * 0.488603 * n.y + u_sh[2] * 0.488603 * n.z + u_sh[3] * 0.488603 * n.x
         + u_sh[4] * 1.092548 * n.x * n.y + u_sh[5] * 1.092548 * n.y * n.z
         + u_sh[6] * 0.315392 * (3.0 * n.z * n.z - 1.0)
         + u_sh[7] * 1.092548 * n.x * n.z + u_sh[8] * 0.546274 * (n.x * n.x - n.y * n.y);
}

float lobe(vec3 n, vec3 l, vec3 v) {
    vec3 h = normalize(l + v);
    return pow(max(dot(n, h), 0.0), u_shininess) * step(0.0, dot(n, l));
}

// The light at a surface point: shaded linear colour = albedo * diffuse + added (specular and
// rim). The viewport keeps both per pixel to repaint a texture change without drawing the mesh
// (shaders/paint_gbuffer.frag).
// n_world: unit normal in world space; v_view: unit vector from surface to eye in view space.
void shade_terms(vec3 n_world, vec3 v_view, out vec3 diffuse, out vec3 added) {
    vec3 n = normalize(u_view_rot * n_world);
#if LIGHT_MODE == 1
    diffuse = max(sh_irradiance(n_world), vec3(0.0));
    float spec = lobe(n, normalize(vec3(0.3, 0.6, 1.0)), v_view);
#else
    diffuse = u_ambient
            + u_key_col * max(dot(n, u_key_dir), 0.0)
            + u_fill_col * max(dot(n, u_fill_dir), 0.0);
    float spec = lobe(n, u_key_dir, v_view);
#endif
    // The rim is a grazing-angle term: it outlines the silhouette against the background.
    float g = 1.0 - max(dot(n, v_view), 0.0);
    float rim = g * g * g * max(dot(n, u_rim_dir) + 0.3, 0.0);
    added = u_specular * spec * u_key_col + rim * u_rim_col;
}

vec3 shade_lit(vec3 albedo, vec3 diffuse, vec3 added) {
    return sqrt(clamp(albedo * diffuse + added, 0.0, 1.0));  // linear -> display (gamma 2, cheap)
}

vec3 shade(vec3 albedo, vec3 n_world, vec3 v_view) {
    vec3 diffuse, added;
    shade_terms(n_world, v_view, diffuse, added);
    return shade_lit(albedo, diffuse, added);
}
