#include "common.glsl"
#include "carve.glsl"
#ifndef CARVE
#define CARVE 1
#endif
#ifdef WIREFRAME
in vec3 g_world;
in vec3 g_normal;
in vec2 g_uv;
in vec3 g_view_pos;
noperspective in vec3 g_edge;
#define IN_NORMAL g_normal
#define IN_WORLD g_world
#define IN_UV g_uv
#define IN_VIEW_POS g_view_pos
#else
in vec3 v_world;
in vec3 v_normal;
in vec2 v_uv;
in vec3 v_view_pos;
#define IN_NORMAL v_normal
#define IN_WORLD v_world
#define IN_UV v_uv
#define IN_VIEW_POS v_view_pos
#endif
// VIEW (0 shaded, 1 textured, 2 normals, 3 wireframe) is a compile-time define: a software
// rasteriser (llvmpipe) pays for every branch, so each view gets its own program.
#ifdef VERTEX_LIGHT
in vec3 v_diffuse;   // mesh.vert's light terms (the shaded and textured views)
in vec3 v_added;
#endif
uniform vec3 u_albedo;
uniform sampler2D u_texture;
uniform vec3 u_wire_col;
out vec4 frag;
void main() {
#if CARVE   // only the triangles near the carves (core/render/carve_split.py): discard costs early-z
    if (u_num_carves > 0 && carved(IN_WORLD)) discard;   // eye/mouth caps over the parts
#endif
    vec3 n = normalize(IN_NORMAL);
    if (!gl_FrontFacing) n = -n;   // open meshes (neck, mouth) show their inside lit sensibly
    vec3 v = normalize(-IN_VIEW_POS);  // flat-ish: only used for rim and specular
#if VIEW == 2
    vec3 c = n * 0.5 + 0.5;
#elif defined(VERTEX_LIGHT) && VIEW == 1
    vec3 t = texture(u_texture, IN_UV).rgb;
    vec3 c = shade_lit(t * t, v_diffuse, v_added);   // sRGB -> linear: squared is close enough
#elif defined(VERTEX_LIGHT)
    vec3 c = shade_lit(u_albedo, v_diffuse, v_added);
#elif VIEW == 1
    vec3 t = texture(u_texture, IN_UV).rgb;
    vec3 c = shade(t * t, n, v);
#else
    vec3 c = shade(u_albedo, n, v);
#endif
#ifdef WIREFRAME
    float d = min(min(g_edge.x, g_edge.y), g_edge.z);
    // Thin (about 1 px) lines at partial opacity: dense meshes still read as a surface.
    c = mix(c, u_wire_col, 0.75 * (1.0 - smoothstep(0.2, 1.0, d)));
#endif
    frag = vec4(c, 1.0);
}
