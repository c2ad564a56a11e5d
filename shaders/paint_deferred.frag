// A texture change repainted from the kept lighting (paint_gbuffer.frag): the skin's pixels
// are shaded again from the new texture; every other pixel takes the frame as drawn whole.
#include "common.glsl"
uniform sampler2D u_texture;
uniform sampler2D u_g_uv;
uniform sampler2D u_g_diffuse;
uniform sampler2D u_g_added;
uniform sampler2D u_scene;
out vec4 frag;
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec4 g = texelFetch(u_g_uv, p, 0);
    if (g.z < 0.5) {
        frag = texelFetch(u_scene, p, 0);
        return;
    }
    vec3 t = texture(u_texture, g.xy).rgb;
    frag = vec4(shade_lit(t * t, texelFetch(u_g_diffuse, p, 0).rgb, texelFetch(u_g_added, p, 0).rgb), 1.0);
}
