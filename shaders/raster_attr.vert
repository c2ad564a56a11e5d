// Rasterise triangles given in clip space and interpolate a per-vertex attribute
// (core/fitting/raster.py: camera-view depth maps, UV-space position/normal maps).
in vec4 in_clip;
in vec4 in_attr;
out vec4 v_attr;

void main() {
    v_attr = in_attr;
    gl_Position = in_clip;
}
