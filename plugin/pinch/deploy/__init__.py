"""Deployment forms of a compressed model: ONNX files, int8 quantization, runtime decoding,
compressed downloads.

Names load on first use (pinch.lazy): the deployment table and CTC decoding need no torch.
"""
from pinch.lazy import lazy_exports

_EXPORTS = {
    "greedy_ctc": ".ctc",
    "pieces_to_text": ".ctc",
    "read_tokens": ".ctc",
    "check_ungated": ".onnx_files",
    "onnx_session": ".onnx_files",
    "quantize_int8": ".onnx_files",
    "set_metadata": ".onnx_files",
    "write_download": ".download",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
