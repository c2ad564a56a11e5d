"""int8 inference for the expression classifier (ONNX Runtime static quantization).

The convolutions are compute-bound on this AVX2 CPU. Only the feature extractor (convs +
pooling) is quantized: the linear head stays float32 in torch, so mirror averaging of the
pooled features and the open-set feature score work exactly as in float32, and Grad-CAM keeps
using the float32 network.

Measured on the shipped width-40 network, flip-averaged, 2 threads: 450 crops/s against 206
for float32 in the same bench/fer.py run (PyTorch's FX int8, used before, gave ~1.3x float32),
at the float32 val accuracy (71.30% both).

The export writes the BN-folded float32 graph to ONNX, calibrates activation ranges on
training faces and their mirrors, and stores the quantized model's bytes in the model file as
a uint8 tensor (plain data, loadable with weights_only=True; ONNX is protobuf, never pickle).
"""
from __future__ import annotations

import copy
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .model import FerNet


def available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class _Embed(nn.Module):
    """The part of FerNet that is quantized: input image -> pooled feature."""

    def __init__(self, net: FerNet):
        super().__init__()
        self.features, self.pool = net.features, net.pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


class Int8FerNet(nn.Module):
    """Drop-in for FerNet at inference: int8 `embed` in ONNX Runtime, float32 torch `head`.

    An ONNX Runtime session fixes its thread count when it is created; this keeps one session
    per thread count and uses the one matching torch's current setting, so `torch.set_num_threads`
    governs the int8 path exactly as it does the float32 one."""

    def __init__(self, model: bytes, head: nn.Linear, width: int):
        super().__init__()
        self.model, self.head, self.width = model, head, width
        self._sessions: dict[int, object] = {}
        self._session()  # fail at load, not at the first frame, if the graph is damaged

    def _session(self):
        n = torch.get_num_threads()
        if n not in self._sessions:
            import onnxruntime as ort
            opts = ort.SessionOptions()
            opts.intra_op_num_threads, opts.inter_op_num_threads = n, 1
            # no spin-waiting: in the live loop the classifier shares 2 cores with MediaPipe and
            # the UI (costs ~10% of peak crops/s on an idle machine)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.log_severity_level = 3
            session = ort.InferenceSession(self.model, opts, providers=["CPUExecutionProvider"])
            inputs = [i.name for i in session.get_inputs()]
            if inputs != ["x"]:
                raise ValueError(f"unexpected int8 graph inputs {inputs}")
            self._sessions[n] = session
        return self._sessions[n]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.detach().numpy(), dtype=np.float32)
        return torch.from_numpy(self._session().run(None, {"x": x})[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def _float_onnx(net: FerNet) -> bytes:
    from .classifier import _fuse_bn
    embed = _Embed(_fuse_bn(copy.deepcopy(net).float().eval()))
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore")
        torch.onnx.export(embed, (torch.zeros(2, 1, 48, 48),), buf, input_names=["x"], output_names=["f"],
                          dynamic_axes={"x": {0: "n"}, "f": {0: "n"}}, opset_version=17, dynamo=False)
    return buf.getvalue()


@torch.no_grad()
def quantize(net: FerNet, calibration: torch.Tensor, batch: int = 200) -> bytes:
    """int8 ONNX model of `net`'s feature extractor, calibrated on normalised faces (N,1,48,48)
    and their mirrors (inference sees both). Needs the `onnx` package (export time only)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x = calibration.float().numpy()
    batches = [np.ascontiguousarray(b) for i in range(0, len(x), batch)
               for b in (x[i:i + batch], x[i:i + batch, ..., ::-1])]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"x": b}

    with tempfile.TemporaryDirectory() as tmp:
        raw, pre, out = (Path(tmp) / n for n in ("f32.onnx", "pre.onnx", "int8.onnx"))
        raw.write_bytes(_float_onnx(net))
        quant_pre_process(str(raw), str(pre))
        # reduce_range (7-bit weights): without VNNI, AVX2 sums pairs of u8 x s8 products in
        # int16, which saturates with full-range weights (measured: 62.6% val accuracy against 71.2%)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                        reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return out.read_bytes()

