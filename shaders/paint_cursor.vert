// The brush outline over the 3D view (app/viewport.py): a circle given in normalised device coordinates.
in vec2 in_pos;
void main() {
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
