"""Deployment forms of a compressed model: ONNX files, int8 quantization, runtime decoding."""
from pinch.deploy.ctc import greedy_ctc, pieces_to_text, read_tokens
from pinch.deploy.onnx_files import check_ungated, onnx_session, quantize_int8, set_metadata

__all__ = ["check_ungated", "greedy_ctc", "onnx_session", "pieces_to_text", "quantize_int8", "read_tokens", "set_metadata"]
