"""The deployment table: one row per deployed form of a recipe's models (ONNX fp32, int8 dynamic,
int8 static in a runtime), with WER per test set, MAPSSWE against the dense PyTorch model, size and latency.

Each form's decodes live in ``<model_dir>/onnx/<form>_<runtime>/decode_<set>/`` as the recipes'
scoring stages write them (score_wer/result.json, mapsswe_vs_dense/compare.json). A form is one
graph (CTC), or a transducer's encoder, decoder and joiner in sherpa-onnx's layout; its size is
that of all its files, its download size that of the .tar.bz2 the report writes of them and
``tokens.txt`` (``download_file``): what a user fetches, zeros compressed.
"""
import json
from pathlib import Path

from pinch.data.atomic import write_json_atomic, write_text_atomic

FORMS = {"fp32": "model.onnx", "int8": "model.int8.onnx", "int8_static": "model.int8_static.onnx"}
# A transducer's files per form, encoder first. Static int8 is the encoder's: the decoder and joiner
# run one frame or token at a time, and their int8 form is the dynamic one.
TRANSDUCER_FORMS = {"fp32": ("encoder.onnx", "decoder.onnx", "joiner.onnx"),
                    "int8": ("encoder.int8.onnx", "decoder.int8.onnx", "joiner.int8.onnx"),
                    "int8_static": ("encoder.int8_static.onnx", "decoder.int8.onnx", "joiner.int8.onnx")}


def form_files(model_dir, form):
    """The ONNX files of ``form`` in ``<model_dir>/onnx``: its graph, or a transducer's three files."""
    onnx = Path(model_dir) / "onnx"
    if (onnx / TRANSDUCER_FORMS[form][0]).is_file():
        return [onnx / name for name in TRANSDUCER_FORMS[form]]
    return [onnx / FORMS[form]]


def transducer_files(encoder):
    """The encoder, decoder and joiner of the form whose encoder file is ``encoder``; None for any
    other file (a graph of its own)."""
    encoder = Path(encoder)
    for names in TRANSDUCER_FORMS.values():
        if encoder.name == names[0]:
            return [encoder.with_name(name) for name in names]
    return None


def download_sources(model_dir, form):
    """What a user needs to run ``form``: its ONNX files and the token table."""
    return [*form_files(model_dir, form), Path(model_dir) / "onnx" / "tokens.txt"]


def download_file(model_dir, name, form):
    """``form``'s download archive; it unpacks to a folder named after the model (the report's
    ``name``) and form, so two models' archives unpack side by side."""
    return Path(model_dir) / "onnx" / "download" / f"{name.replace('/', '-')}-{form}.tar.bz2"


def form_dir(model_dir, form, runtime):
    return Path(model_dir) / "onnx" / f"{form}_{runtime}"


def _read(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (run the decoding and scoring of the deploy stage)")
    return json.loads(path.read_text())


def deploy_row(model_dir, name, form, runtime, test_sets, latency):
    """One form's row; ``latency`` is `onnx_latencies`' entry for its (first) file."""
    size = sum(path.stat().st_size for path in form_files(model_dir, form))
    download = download_file(model_dir, name, form)
    if not download.is_file():
        raise FileNotFoundError(f"{download}: missing (pinch.deploy.report writes it)")
    row = {"model": name, "form": f"onnx {form}", "runtime": runtime, "size_mb": size / 1e6,
           "download_mb": download.stat().st_size / 1e6,
           "latency_ratio": latency["ratio"], "latency_ratio_range": latency["ratio_range"],
           "latency_ms": latency["median_s"] * 1000, "load_s": latency["load_s"], "wer": {}, "vs_dense": {}}
    for dset in test_sets:
        decode = form_dir(model_dir, form, runtime) / f"decode_{dset}"
        row["wer"][dset] = _read(decode / "score_wer" / "result.json")["wer"]
        compare = _read(decode / "mapsswe_vs_dense" / "compare.json")
        row["vs_dense"][dset] = {k: compare[k] for k in ("p_value", "lossless")}
    return row


def render(rows, test_sets, latency_note):
    return "\n".join(["# Deployment: ONNX forms decoded by their runtimes", "", latency_note, "",
                      markdown_table(rows, test_sets)])


def markdown_table(rows, test_sets):
    """The forms' rows as a Markdown table (DEPLOY.md's, and the docs' generated copies)."""
    head = ["model", "form", "runtime", "size MB", "download MB", "latency x dense fp32 [range]"]
    head += [f"WER {d}" for d in test_sets] + [f"p vs dense PyTorch ({d})" for d in test_sets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lo, hi = r["latency_ratio_range"]
        cells = [r["model"], r["form"], r["runtime"], f"{r['size_mb']:.2f}", f"{r['download_mb']:.2f}",
                 f"{r['latency_ratio']:.2f} [{lo:.2f}, {hi:.2f}]"]
        cells += [f"{r['wer'][d]:.2f}" for d in test_sets]
        cells += [_verdict(r["vs_dense"][d]) for d in test_sets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _verdict(test):
    return f"{test['p_value']:.2g}" + ("" if test["lossless"] else " worse")


def write_table(out_md, rows, test_sets, latency_note):
    write_json_atomic(Path(out_md).with_suffix(".json"), {"note": latency_note, "rows": rows})
    write_text_atomic(out_md, render(rows, test_sets, latency_note))
