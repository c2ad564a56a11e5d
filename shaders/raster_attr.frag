in vec4 v_attr;
out vec4 f_attr;

void main() {
    f_attr = v_attr;
}
