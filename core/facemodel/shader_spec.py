"""The MLP-stage format the GLSL renderer evaluates, and its numpy reference.

A stage is a dict:
  kind           "warp" (3 outputs, added to the point in cm before the next stage) or "sdf"
                 (1 output: signed distance in cm, negative inside); the last stage is "sdf"
  in_offset/in_scale   (3,) float32: x_n = (x - in_offset) * in_scale
  num_freqs      L: features [x_n, sin(2^k pi x_n) (3), cos(2^k pi x_n) (3) for k < L]
  layers         [(W (out, in) float32, b (out,) float32), ...]; the activation follows every
                 layer but the last; identity/expression codes are folded into the first bias
  activation     "relu" or "softplus" (softplus_beta: softplus(y) = log(1 + exp(beta y)) / beta)
  clip_plane     optional on the "sdf" stage, (nx, ny, nz, offset): the result is
                 max(sdf, offset - n . x) at the stage's input x (the face model's neck cut)
"""
from __future__ import annotations

import numpy as np


def features(xn: np.ndarray, num_freqs: int) -> np.ndarray:
    feats = [xn]
    for k in range(num_freqs):
        a = (2.0 ** k) * np.pi * xn
        feats += [np.sin(a), np.cos(a)]
    return np.concatenate(feats, -1)


def _activate(y: np.ndarray, stage: dict) -> np.ndarray:
    if stage["activation"] == "relu":
        return np.maximum(y, 0.0)
    beta = float(stage.get("softplus_beta", 1.0))
    by = beta * y
    return np.where(by > 20.0, y, np.log1p(np.exp(np.minimum(by, 20.0))) / beta)


def evaluate_stage(stage: dict, x: np.ndarray) -> np.ndarray:
    xn = (x - np.asarray(stage["in_offset"], np.float32)) * np.asarray(stage["in_scale"], np.float32)
    h = features(xn.astype(np.float32), int(stage["num_freqs"]))
    layers = stage["layers"]
    for i, (w, b) in enumerate(layers):
        h = h @ np.asarray(w, np.float32).T + np.asarray(b, np.float32)
        if i < len(layers) - 1:
            h = _activate(h, stage)
    return h


def evaluate_stages_numpy(stages: list[dict], points: np.ndarray) -> np.ndarray:
    """Reference evaluation: (N, 3) points in cm -> (N,) SDF in cm."""
    x = np.asarray(points, np.float32).reshape(-1, 3)
    for stage in stages:
        out = evaluate_stage(stage, x)
        if stage["kind"] == "warp":
            x = x + out
        elif stage["kind"] == "sdf":
            d = out[:, 0]
            if stage.get("clip_plane") is not None:
                c = np.asarray(stage["clip_plane"], np.float32)
                d = np.maximum(d, c[3] - x @ c[:3])
            return d.astype(np.float32)
        else:
            raise ValueError(f"unknown stage kind {stage['kind']!r}")
    raise ValueError("stages must end with an 'sdf' stage")


def stages_from_net(net, code: np.ndarray) -> list[dict]:
    """The shader stages of a FaceNet for one (identity code ++ expression code)."""
    offset = net.in_offset.numpy().astype(np.float32)
    scale = net.in_scale.numpy().astype(np.float32)
    stages = []
    for kind, mlp, c in (("warp", net.shader_warp, code), ("sdf", net.shader_sdf, None)):
        layers = [(l.weight.detach().numpy().astype(np.float32).copy(),
                   l.bias.detach().numpy().astype(np.float32).copy()) for l in mlp.layers]
        if c is not None:  # fold the code into the first layer's bias
            w, b = layers[0]
            n_x = w.shape[1] - len(c)
            layers[0] = (np.ascontiguousarray(w[:, :n_x]), b + w[:, n_x:] @ np.asarray(c, np.float32))
        stages.append({"kind": kind, "in_offset": offset.copy(), "in_scale": scale.copy(),
                       "num_freqs": int(mlp.octaves), "layers": layers, "activation": "softplus",
                       "softplus_beta": float(mlp.beta)})
    return stages
