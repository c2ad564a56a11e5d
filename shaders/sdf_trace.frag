// Sphere tracing (Hart 1996) of scene_sdf(), which is defined by the file included before this
// one: sdf_grid.glsl (baked grid) or generated neural-network code. VIEW is a define as in
// mesh.frag.
#include "common.glsl"
#include "carve.glsl"
uniform mat4 u_inv_view_proj;
uniform mat4 u_view_proj;
uniform mat4 u_model;              // the field's frame -> world (a turned head); rigid
uniform mat4 u_model_inv;
uniform vec3 u_eye;
uniform vec2 u_viewport;
uniform vec3 u_box_lo;
uniform vec3 u_box_hi;
uniform float u_pixel_angle;       // radians per pixel, sets the hit tolerance
uniform float u_step_scale;        // < 1 for fields that are not exact distances (networks)
uniform float u_grad_h;
uniform int u_max_steps;
uniform int u_has_uv;
uniform vec3 u_albedo;
uniform sampler2D u_texture;
out vec4 frag;
#ifndef HIT_PIXELS
#define HIT_PIXELS 0.2
#endif

SCENE_CODE

// The skin cut by the carve ellipsoids (core.head.parts.Carve), in the field's frame.
float traced_sdf(vec3 p) {
    float d = scene_sdf(p);
    return u_num_carves > 0 ? max(d, carve_depth(p)) : d;
}

vec3 scene_normal(vec3 p) {
    // Tetrahedral differences: 4 evaluations instead of 6 for central differences.
    vec2 k = vec2(1.0, -1.0) * u_grad_h;
    return normalize(k.xyy * traced_sdf(p + k.xyy) + k.yyx * traced_sdf(p + k.yyx) +
                     k.yxy * traced_sdf(p + k.yxy) + k.xxx * traced_sdf(p + k.xxx));
}

void main() {
    vec2 ndc = gl_FragCoord.xy / u_viewport * 2.0 - 1.0;
    vec4 far = u_inv_view_proj * vec4(ndc, 1.0, 1.0);
    vec3 dir_w = normalize(far.xyz / far.w - u_eye);
    // March in the field's own frame: a rigid pose moves the ray, not the baked field.
    vec3 eye = (u_model_inv * vec4(u_eye, 1.0)).xyz;
    vec3 dir = mat3(u_model_inv) * dir_w;
    // Clip the ray to the field's box; outside it there is nothing to find.
    vec3 inv = 1.0 / dir;
    vec3 ta = (u_box_lo - eye) * inv, tb = (u_box_hi - eye) * inv;
    float t0 = max(max(min(ta.x, tb.x), min(ta.y, tb.y)), max(min(ta.z, tb.z), 0.0));
    float t1 = min(min(max(ta.x, tb.x), max(ta.y, tb.y)), max(ta.z, tb.z));
    if (t0 >= t1) discard;
    float t = t0 + 1e-4;
    bool hit = false;
    for (int i = 0; i < u_max_steps; i++) {
        float d = traced_sdf(eye + dir * t);
        // Hit when the surface is within half a pixel's footprint of the ray.
        if (d < HIT_PIXELS * u_pixel_angle * t) { hit = true; break; }
        t += d * u_step_scale;
        if (t > t1) break;
    }
    if (!hit) discard;
    vec3 pm = eye + dir * t;
    vec3 n = normalize(mat3(u_model) * scene_normal(pm));
    vec3 p = (u_model * vec4(pm, 1.0)).xyz;
#if VIEW == 2
    vec3 c = n * 0.5 + 0.5;
#else
    vec3 albedo = u_albedo;
#if VIEW == 1
    if (u_has_uv == 1) {
        vec3 tc = texture(u_texture, scene_uv(pm)).rgb;
        albedo = tc * tc;
    }
#endif
    vec3 c = shade(albedo, n, normalize(u_view_rot * (u_eye - p)));
#endif
    vec4 clip = u_view_proj * vec4(p, 1.0);
    gl_FragDepth = clamp(clip.z / clip.w * 0.5 + 0.5, 0.0, 1.0);
    frag = vec4(c, 1.0);
}
