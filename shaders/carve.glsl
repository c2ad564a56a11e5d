// Ellipsoids where the skin is hidden (core.head.parts.Carve): each matrix maps a point into
// the unit ball's frame, so |M p| < 1 is inside. Lets eyeballs and teeth show through the
// learned skin's closing caps over the eyes and mouth.
uniform int u_num_carves;
uniform mat4 u_carves[6];          // MAX_CARVES in core/render/renderer.py
uniform vec4 u_carve_bound;        // a sphere (centre, radius^2) around all of them: most
                                   // fragments leave after one test (llvmpipe pays per lane)

bool carved(vec3 p) {
    vec3 b = p - u_carve_bound.xyz;
    if (dot(b, b) > u_carve_bound.w) return false;
    for (int i = 0; i < u_num_carves; i++) {
        vec3 q = (u_carves[i] * vec4(p, 1.0)).xyz;
        if (dot(q, q) < 1.0) return true;
    }
    return false;
}

// Inside the union: a lower bound of the distance to its boundary (< 0 outside), scaled
// by the ellipsoid's shortest semi-axis: cutting a field with max(d, carve_depth) keeps the
// sphere tracer's steps safe.
float carve_depth(vec3 p) {
    float d = -1e3;
    vec3 b = p - u_carve_bound.xyz;
    if (dot(b, b) > u_carve_bound.w) return d;
    for (int i = 0; i < u_num_carves; i++) {
        vec3 q = (u_carves[i] * vec4(p, 1.0)).xyz;
        // rows of the linear part hold 1/semi-axis: the largest row norm is 1/shortest axis
        float inv = max(max(length(u_carves[i][0].xyz), length(u_carves[i][1].xyz)),
                        length(u_carves[i][2].xyz));
        d = max(d, (1.0 - length(q)) / inv);
    }
    return d;
}
