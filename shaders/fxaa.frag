// Fast approximate anti-aliasing of a finished frame (after Lottes' FXAA, the short "console"
// form): where the luma contrast around a pixel is high, blend along the edge's direction
// instead of across it. One pass, 9 taps; software GL pays a few ms at 512^2 where 2x MSAA
// doubles the cost of every fragment.
uniform sampler2D u_frame;
uniform vec2 u_texel;              // 1 / size
out vec4 frag;

const float REDUCE_MIN = 1.0 / 128.0;
const float REDUCE_MUL = 1.0 / 8.0;
const float SPAN_MAX = 8.0;

float luma(vec3 c) { return dot(c, vec3(0.299, 0.587, 0.114)); }

// Unfiltered fetch clamped to the frame (the luma taps sit on texel centres, where a filtered
// read gives the same value; software GL filters at a cost).
vec4 tap(ivec2 p) { return texelFetch(u_frame, clamp(p, ivec2(0), textureSize(u_frame, 0) - 1), 0); }

void main() {
    vec2 uv = gl_FragCoord.xy * u_texel;
    ivec2 px = ivec2(gl_FragCoord.xy);
    vec4 centre = tap(px);
    float lm = luma(centre.rgb);
    float nw = luma(tap(px + ivec2(-1, -1)).rgb);
    float ne = luma(tap(px + ivec2(1, -1)).rgb);
    float sw = luma(tap(px + ivec2(-1, 1)).rgb);
    float se = luma(tap(px + ivec2(1, 1)).rgb);
    float lo = min(lm, min(min(nw, ne), min(sw, se)));
    float hi = max(lm, max(max(nw, ne), max(sw, se)));
    if (hi - lo < max(0.0312, hi * 0.125)) {   // flat: most pixels leave here
        frag = centre;
        return;
    }
    // the gradient's perpendicular: the direction the edge runs in
    vec2 dir = vec2(-((nw + ne) - (sw + se)), (nw + sw) - (ne + se));
    float reduce = max((nw + ne + sw + se) * 0.25 * REDUCE_MUL, REDUCE_MIN);
    dir = clamp(dir / (min(abs(dir.x), abs(dir.y)) + reduce), -SPAN_MAX, SPAN_MAX) * u_texel;
    vec4 a = 0.5 * (texture(u_frame, uv + dir * (1.0 / 3.0 - 0.5)) + texture(u_frame, uv + dir * (2.0 / 3.0 - 0.5)));
    vec4 b = 0.5 * a + 0.25 * (texture(u_frame, uv - dir * 0.5) + texture(u_frame, uv + dir * 0.5));
    float lb = luma(b.rgb);
    frag = (lb < lo || lb > hi) ? a : b;   // the wide blend overshot: keep the narrow one
}
