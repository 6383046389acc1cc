"""Relative sinusoidal position encodings computed in the exported graph.

ESPnet's and NeMo's Conformers keep a table of ``2 * 5000 - 1`` sinusoids and slice it per
input length. Exported as is, the table is a constant of every ONNX file: 5.76 MB at d=144,
more than the recipe model's int8 weights (2.7 MB), so int8 cannot make the file small.
Computed from the length instead, the graph holds no table, serves any length, and gives
the table's values (the same float32 operations; 1e-5 apart in onnxruntime, measured).
"""
import math

import torch


def relative_sinusoids(length, d_model, device):
    """``(1, 2 * length - 1, d_model)``: positions ``length - 1`` down to ``-(length - 1)``,
    sine and cosine interleaved, as both toolkits' RelPositionalEncoding tables hold them."""
    position = torch.arange(length - 1, -length, -1, dtype=torch.float32, device=device).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32, device=device)
                         * -(math.log(10000.0) / d_model))
    angle = position * div_term
    return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(1, 2 * length - 1, d_model)


class ComputedRelPositions(torch.nn.Module):
    """Stands in for ESPnet's or NeMo's RelPositionalEncoding at export (eval, offline): both keep
    ``d_model`` and ``xscale`` (NeMo's may be None) and return ``(scaled x, sinusoids)``."""

    def __init__(self, pos_enc):
        super().__init__()
        self.d_model, self.xscale = pos_enc.d_model, pos_enc.xscale

    def extend_pe(self, length, device, dtype):
        """NeMo's encoder sizes its table before each forward; there is none to size."""

    def forward(self, x, cache_len=0):
        if self.xscale:
            x = x * self.xscale
        return x, relative_sinusoids(x.size(1) + cache_len, self.d_model, x.device).to(x.dtype)


def swap_modules(model, cls, make):
    """Replace every module of exactly type ``cls`` in ``model`` by ``make(module)``."""
    for name, module in list(model.named_modules()):
        if type(module) is cls:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, make(module))
    return model
