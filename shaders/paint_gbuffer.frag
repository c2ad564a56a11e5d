// The skin's lighting per pixel, for repainting texture changes without drawing the mesh
// (core/render/paint_frame.py): drawn with the frame's own depth buffer and the depth test
// "less or equal", so only pixels where the skin is the visible surface get written. The same
// inputs and terms as mesh.frag's textured view: shade_lit(t * t, diffuse, added) there.
#include "common.glsl"
#include "carve.glsl"
in vec3 v_world;
in vec3 v_normal;
in vec2 v_uv;
in vec3 v_view_pos;
#ifdef VERTEX_LIGHT
in vec3 v_diffuse;    // mesh.vert's per-vertex terms, as the frame's skin used them
in vec3 v_added;
#endif
layout(location = 0) out vec4 g_uv;        // uv, 1 where the skin shows
layout(location = 1) out vec4 g_diffuse;
layout(location = 2) out vec4 g_added;
void main() {
    if (u_num_carves > 0 && carved(v_world)) discard;
#ifdef VERTEX_LIGHT
    vec3 diffuse = v_diffuse, added = v_added;
#else
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    vec3 v = normalize(-v_view_pos);
    vec3 diffuse, added;
    shade_terms(n, v, diffuse, added);
#endif
    g_uv = vec4(v_uv, 1.0, 0.0);
    g_diffuse = vec4(diffuse, 0.0);
    g_added = vec4(added, 0.0);
}
