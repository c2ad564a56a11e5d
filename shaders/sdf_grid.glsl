// Signed distance from a grid baked into a 3D texture (nodes at lo + (hi-lo)*i/(R-1)),
// trilinearly filtered by the hardware: one texture fetch per sphere-tracing step.
uniform sampler3D u_grid;
uniform sampler3D u_uv_grid;
uniform vec3 u_tc_scale;    // world -> texture coordinate as one multiply-add per step
uniform vec3 u_tc_offset;
uniform vec3 u_uv_lo;       // the grid's own box (the tracing box may be tighter)
uniform vec3 u_uv_hi;
float scene_sdf(vec3 p) {
    return texture(u_grid, p * u_tc_scale + u_tc_offset).r;
}
vec2 scene_uv(vec3 p) {
    vec3 t = (p - u_uv_lo) / (u_uv_hi - u_uv_lo);
    vec3 r = vec3(textureSize(u_uv_grid, 0));
    return texture(u_uv_grid, (t * (r - 1.0) + 0.5) / r).rg;
}
