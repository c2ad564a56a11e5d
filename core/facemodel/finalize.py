"""Turn a training checkpoint into the shipped model file (float16 where it holds up)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from core.meshops import clean_sign_specks

from .data import FaceData
from .model import FaceModel
from .net import FaceNet, FaceNetConfig


def project_to_zero_level(net: FaceNet, pts: torch.Tensor, iters: int = 6) -> torch.Tensor:
    """Newton steps along the template SDF gradient: puts points on the learned surface."""
    x = pts.clone()
    for _ in range(iters):
        x.requires_grad_(True)
        s = net.template_sdf(x)
        (g,) = torch.autograd.grad(s.sum(), x)
        x = (x - s[:, None] * g / (g.norm(dim=1, keepdim=True) ** 2 + 1e-8)).detach()
    return x


def finalize(ckpt: Path, out: Path, data: FaceData | None = None,
             log: Callable[[str], None] = print) -> dict:
    st = torch.load(ckpt, map_location="cpu", weights_only=True)
    net = FaceNet(FaceNetConfig.from_dict(st["config"]))
    net.load_state_dict(st["state"])
    with torch.no_grad():  # one solid: no sign specks where the closed neck cut is thin
        net.sdf_grid.copy_(torch.from_numpy(clean_sign_specks(net.sdf_grid[0].numpy()))[None])
    if data is not None:  # landmark positions: the template's 68 points, moved onto our surface
        lm = torch.tensor(data.template()[data.topo.landmarks], dtype=torch.float32)
        net.landmarks_template.copy_(project_to_zero_level(net, lm))
    else:
        net.landmarks_template.copy_(project_to_zero_level(net, net.landmarks_template))
    meta = {"steps": int(st["step"]), "train_seconds": float(st["elapsed"]),
            "data": "ICT FaceKit Light: identities a~N(0,1) (100 modes), sampled expressions"}
    model = FaceModel(net, meta)
    # float16 check: on the float32 surface, the float16 model's SDF must stay ~0 and the
    # identity/expression offsets must agree to well under 0.1 mm.
    vt = torch.from_numpy(model.extract_mesh(model.mean_identity(), None, 96).template)
    z = torch.from_numpy(model.sample_identity(np.random.default_rng(0)))
    dw = torch.full((53,), 0.3) - net.rest_expression
    size = model.save(out, half=True)
    half = FaceModel.load(out)
    with torch.no_grad():
        dev_sdf = float((half.net.template_sdf(vt) - model.net.template_sdf(vt)).abs().max())
        dev_disp = float((half.net.displacement(vt, z, dw) - model.net.displacement(vt, z, dw)).norm(dim=1).max())
    dev = max(dev_sdf, dev_disp)
    if not dev < 0.01:
        log(f"float16 moved the surface by {dev:.4f} cm: saving float32")
        size = model.save(out, half=False)
    else:
        log(f"float16 max deviation {dev * 10:.4f} mm (sdf {dev_sdf * 10:.4f}, warp {dev_disp * 10:.4f})")
    return {"bytes": size, "steps": meta["steps"], "train_seconds": meta["train_seconds"], "fp16_dev_cm": dev}
