"""The face model's networks as shader code: a generator of GLSL equivalent to the stage spec
(core.facemodel.shader_spec, whose numpy evaluator is the reference the GLSL is tested against).

A stage: x_n = (x - in_offset) * in_scale; features = [x_n, sin(2^k pi x_n), cos(2^k pi x_n)
for k < num_freqs]; layers (W (out,in), b) with the activation between layers (not after the
last). A "warp" stage's 3 outputs are added to x; the final "sdf" stage gives distance in cm.
"""
from __future__ import annotations

import numpy as np

from core.facemodel.shader_spec import evaluate_stages_numpy as evaluate_stages  # noqa: F401

WEIGHT_TEX_WIDTH = 4096  # weights live in an R32F texture: any size, GL 3.3, no UBO limit


def stage_bounds(stages: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The box where the first stage's normalised input lies in [-1, 1]: the tracing box."""
    s = stages[0]
    off, scale = np.asarray(s["in_offset"], np.float64), np.asarray(s["in_scale"], np.float64)
    half = 1.0 / np.abs(scale)
    return (off - half).astype(np.float32), (off + half).astype(np.float32)


def pack_weights(stages: list[dict]) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """All W and b flattened into one float32 array shaped for the weight texture, and for
    each stage and layer the (W offset, b offset) into it."""
    chunks, offsets, pos = [], [], 0
    for stage in stages:
        so = []
        for w, b in stage["layers"]:
            w = np.asarray(w, np.float32)
            b = np.asarray(b, np.float32).ravel()
            so.append((pos, pos + w.size))
            chunks += [w.ravel(), b]
            pos += w.size + b.size
        offsets.append(so)
    flat = np.concatenate(chunks) if chunks else np.zeros(1, np.float32)
    rows = -(-len(flat) // WEIGHT_TEX_WIDTH)
    tex = np.zeros(rows * WEIGHT_TEX_WIDTH, np.float32)
    tex[: len(flat)] = flat
    return tex.reshape(rows, WEIGHT_TEX_WIDTH), offsets


def _f(x: float) -> str:
    return f"{float(x):.9e}"  # always a valid GLSL float literal


def _vec3(v) -> str:
    return "vec3(" + ", ".join(_f(c) for c in np.asarray(v, np.float64).ravel()) + ")"


def generate_glsl(stages: list[dict]) -> str:
    """GLSL defining `float scene_sdf(vec3 p)` (and a constant scene_uv) for the stages.

    Layer sizes and encodings are compile-time constants so loops unroll and arrays stay in
    registers; the weights are read from the R32F texture u_weights with texelFetch.
    """
    _, offsets = pack_weights(stages)
    out = [
        "uniform sampler2D u_weights;",
        f"float wt(int i) {{ return texelFetch(u_weights, ivec2(i % {WEIGHT_TEX_WIDTH}, "
        f"i / {WEIGHT_TEX_WIDTH}), 0).r; }}",
        "vec2 scene_uv(vec3 p) { return vec2(0.5); }",
    ]
    for si, stage in enumerate(stages):
        kind, L = stage["kind"], int(stage["num_freqs"])
        beta = float(stage.get("softplus_beta", 1.0))
        if stage["activation"] == "relu":
            act = "max(s, 0.0)"
        elif stage["activation"] == "softplus":
            act = f"max(s, 0.0) + log(1.0 + exp(-abs({_f(beta)} * s))) / {_f(beta)}"
        else:
            raise ValueError(f"unknown activation '{stage['activation']}'")
        n_in = 3 + 6 * L
        ret = "vec3" if kind == "warp" else "float"
        body = [f"{ret} stage{si}(vec3 x) {{",
                f"    vec3 xn = (x - {_vec3(stage['in_offset'])}) * {_vec3(stage['in_scale'])};",
                f"    float h0[{n_in}];",
                "    h0[0] = xn.x; h0[1] = xn.y; h0[2] = xn.z;"]
        for k in range(L):
            body += [f"    {{ vec3 a = {_f(2.0 ** k * np.pi)} * xn; vec3 sa = sin(a), ca = cos(a);",
                     f"      h0[{3 + 6 * k}] = sa.x; h0[{4 + 6 * k}] = sa.y; h0[{5 + 6 * k}] = sa.z;",
                     f"      h0[{6 + 6 * k}] = ca.x; h0[{7 + 6 * k}] = ca.y; h0[{8 + 6 * k}] = ca.z; }}"]
        layers = stage["layers"]
        prev, prev_n = "h0", n_in
        for li, (w, _) in enumerate(layers):
            n_out, n_w_in = np.asarray(w).shape
            if n_w_in != prev_n:
                raise ValueError(f"stage {si} layer {li}: W has {n_w_in} inputs, expected {prev_n}")
            wo, bo = offsets[si][li]
            last = li == len(layers) - 1
            body += [f"    float h{li + 1}[{n_out}];",
                     f"    for (int o = 0; o < {n_out}; o++) {{",
                     f"        float s = wt({bo} + o);",
                     f"        int row = {wo} + o * {prev_n};",
                     f"        for (int i = 0; i < {prev_n}; i++) s += wt(row + i) * {prev}[i];",
                     f"        h{li + 1}[o] = {'s' if last else act};",
                     "    }"]
            prev, prev_n = f"h{li + 1}", n_out
        want = 3 if kind == "warp" else 1
        if prev_n != want:
            raise ValueError(f"stage {si} ({kind}) must output {want} values, got {prev_n}")
        body.append(f"    return vec3({prev}[0], {prev}[1], {prev}[2]);" if kind == "warp"
                    else f"    return {prev}[0];")
        body.append("}")
        out += body
    call = ["float scene_sdf(vec3 p) {", "    vec3 x = p;"]
    for si, stage in enumerate(stages):
        clip = stage.get("clip_plane")
        if stage["kind"] == "warp":
            call.append(f"    x += stage{si}(x);")
        elif clip is not None:  # max(sdf, distance below the plane): see shader_spec.py
            call.append(f"    return max(stage{si}(x), {_f(clip[3])} - dot({_vec3(clip[:3])}, x));")
        else:
            call.append(f"    return stage{si}(x);")
    call.append("}")
    return "\n".join(out + call)


def sphere_trace_numpy(sdf, eye: np.ndarray, dirs: np.ndarray, lo, hi, pixel_angle: float,
                       step_scale: float = 0.8, max_steps: int = 96,
                       hit_pixels: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """CPU twin of shaders/sdf_trace.frag (hit_pixels = its HIT_PIXELS) for rays (N,3): (hit (N,) bool, t (N,)).
    `sdf` maps (N,3) points to (N,) distances, e.g. lambda p: evaluate_stages(stages, p)."""
    eye = np.asarray(eye, np.float64)
    d = np.asarray(dirs, np.float64)
    with np.errstate(divide="ignore"):
        inv = 1.0 / d
    ta, tb = (np.asarray(lo) - eye) * inv, (np.asarray(hi) - eye) * inv
    t0 = np.maximum(np.minimum(ta, tb).max(1), 0.0)
    t1 = np.maximum(ta, tb).min(1)
    active = t0 < t1
    t = t0 + 1e-4
    hit = np.zeros(len(d), bool)
    for _ in range(max_steps):
        idx = np.flatnonzero(active)
        if not len(idx):
            break
        dist = sdf(eye + d[idx] * t[idx, None])
        close = dist < hit_pixels * pixel_angle * t[idx]
        hit[idx[close]] = True
        go = idx[~close]
        t[go] += dist[~close] * step_scale
        active[idx[close]] = False
        active[go[t[go] > t1[go]]] = False
    return hit, t
