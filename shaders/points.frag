// Round, anti-aliased screen-space dots.
uniform vec3 u_point_col;
out vec4 frag;
void main() {
    float r = length(gl_PointCoord - 0.5) * 2.0;
    if (r > 1.0) discard;
    float ring = smoothstep(0.6, 0.8, r);
    frag = vec4(mix(u_point_col, vec3(0.05), ring), 1.0);
}
