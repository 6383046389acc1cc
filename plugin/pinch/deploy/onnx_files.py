"""ONNX files of baked or shrunk models: metadata, int8 quantization, checked sessions.

A file is written next to its destination and renamed over it, so a killed export or
quantization never leaves a file that a rerun would trust.
"""
import os
import tempfile
from pathlib import Path

import numpy as np

CALIBRATION_UTTERANCES = 32  # static int8: utterances whose activations fix the scales


def check_ungated(model):
    """Refuse a model that still has gates: the exported graph must hold the masked weights."""
    from pinch.gates.gate import THRESHOLD_SUFFIX, iter_gates  # torch: only exporters call this

    gated = [n for n, _ in iter_gates(model)] + [n for n, _ in model.named_parameters()
                                                 if n.endswith(THRESHOLD_SUFFIX)]
    if gated:
        raise ValueError(f"{type(model).__name__} still has pinch gates ({gated[0]}); bake it (or shrink a "
                         "structured one) before exporting")


def replace_atomically(path, write):
    """Call ``write(tmp_path)``, then move the result to ``path``; nothing is left on failure."""
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def set_metadata(path, metadata):
    """Add ``metadata`` (str values) to an ONNX file's ``metadata_props``, as runtimes read them."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({k: str(v) for k, v in metadata.items()})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    replace_atomically(path, lambda tmp: onnx.save(model, tmp))


def onnx_session(path, threads=1):
    """An onnxruntime CPU session with ``threads`` intra-op threads (1: the latency figures' setting)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize_int8(src, dst, feeds, keep_fp32=(), calibration=None):
    """int8 weights (per output channel) of ``src``, written to ``dst`` only if the result gives
    finite outputs on ``feeds``.

    Without ``calibration`` activations are quantized on the fly (dynamic). With it, a list of
    input feeds from real utterances (the recipes use their dev set), the activation scales
    are fixed from those inputs (static, onnxruntime's QOperator int8 kernels): dynamic
    quantization computes scales at run time and measured slower than fp32 on this CPU.
    ``keep_fp32``: node names left in float (the layers that int8 breaks).
    """
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(calibration)

        def get_next(self):
            return next(self.feeds, None)

    def write(tmp):
        if calibration is None:
            quantize_dynamic(str(src), tmp, weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=list(keep_fp32))
        else:
            if not calibration:
                raise ValueError(f"static int8 quantization of {src} needs calibration utterances; none given")
            # onnxruntime's pre-processing (graph optimisation; its symbolic shape inference fails on
            # these graphs) made the ESPnet encoder's int8 graph 6% faster. Only the GEMMs and
            # convolutions, where the time goes: int8 softmax and the products after it leave graphs
            # the quantizer cannot finish (ESPnet and NeMo attention, NeMo's GLU).
            prepared = tmp + ".prepared.onnx"
            try:
                quant_pre_process(str(src), prepared, skip_symbolic_shape=True)
                quantize_static(prepared, tmp, Calibration(), quant_format=QuantFormat.QOperator, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                op_types_to_quantize=["MatMul", "Gemm", "Conv"], nodes_to_exclude=list(keep_fp32))
            finally:
                if os.path.exists(prepared):
                    os.remove(prepared)
        outputs = onnx_session(tmp).run(None, feeds)
        bad = [i for i, out in enumerate(outputs) if not np.isfinite(out).all()]
        if bad:
            raise ValueError(f"int8 quantization of {src} gives non-finite outputs (output {bad[0]}); "
                             "keep the offending layers in fp32 (keep_fp32)")

    return replace_atomically(dst, write)


def ctc_session(onnx_path, tokens, key, exporter):
    """A session for a CTC graph that ``exporter`` wrote, and its ``key`` metadata; refused when
    the file lacks it or its outputs per frame do not match the token list."""
    session = onnx_session(onnx_path)
    meta = session.get_modelmeta().custom_metadata_map
    if key not in meta:
        raise ValueError(f"{onnx_path}: no {key} metadata (not exported by {exporter})")
    outputs = session.get_outputs()[0].shape[-1]
    if outputs != len(tokens):
        raise ValueError(f"{onnx_path} has {outputs} outputs per frame, the token list {len(tokens)}: "
                         "they do not belong together")
    return session, meta[key]
