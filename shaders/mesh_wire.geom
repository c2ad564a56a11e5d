// Solid wireframe (Baerentzen et al. 2006): each fragment learns its screen-space distance to
// the three triangle edges, so edges are drawn anti-aliased over the shaded surface with
// hidden lines removed, in one pass and without a polygon-mode state change.
layout(triangles) in;
layout(triangle_strip, max_vertices = 3) out;
in vec3 v_world[];
in vec3 v_normal[];
in vec2 v_uv[];
in vec3 v_view_pos[];
out vec3 g_world;
out vec3 g_normal;
out vec2 g_uv;
out vec3 g_view_pos;
noperspective out vec3 g_edge;
uniform vec2 u_viewport;
void main() {
    vec2 p[3];
    for (int i = 0; i < 3; i++)
        p[i] = u_viewport * 0.5 * gl_in[i].gl_Position.xy / gl_in[i].gl_Position.w;
    vec2 e0 = p[2] - p[1], e1 = p[2] - p[0], e2 = p[1] - p[0];
    float area = abs(e1.x * e2.y - e1.y * e2.x);
    vec3 h = vec3(area / max(length(e0), 1e-6), area / max(length(e1), 1e-6),
                  area / max(length(e2), 1e-6));
    for (int i = 0; i < 3; i++) {
        g_world = v_world[i]; g_normal = v_normal[i]; g_uv = v_uv[i]; g_view_pos = v_view_pos[i];
        g_edge = vec3(0.0); g_edge[i] = h[i];
        gl_Position = gl_in[i].gl_Position;
        EmitVertex();
    }
    EndPrimitive();
}
