"""The results table: rows appended to results.json and rendered to results.md.

Why append-only: a table of compression runs is the project's record; a rerun adds a
new dated row and never replaces an earlier one. results.json (a JSON list) is the
source; results.md is re-rendered from all rows after each append. Appends are
serialised with a lock file so two recipes finishing together lose no row.
"""
from __future__ import annotations

import fcntl
import numbers
import time
from pathlib import Path

from pinch.data.atomic import RESULTS_TABLE, non_finite, write_json_atomic, write_text_atomic
from pinch.data.reading import read_json

JSON_TABLE, MD_TABLE = RESULTS_TABLE

# key -> (type, Markdown header, description)
COLUMNS = {
    "system": (str, "system", "name of the model/run"),
    "toolkit": (str, "toolkit", "espnet or nemo"),
    "task": (str, "task", "asr (the default) or tts"),
    "method": (str, "method", "dense, sspg, magnitude, ..."),
    "target_sparsity": (numbers.Real, "target", "requested sparsity (0..1)"),
    "sparsity": (numbers.Real, "sparsity", "measured sparsity of the gated weights of the baked model (0..1)"),
    "sparsity_trained": (numbers.Real, "sparsity trained", "sparsity of the gated weights as the compression "
                         "pass left them, before bake (the same unless bake was told to rescale)"),
    "params": (numbers.Integral, "params", "parameters of the model"),
    "nonzero_params": (numbers.Integral, "nonzero", "non-zero parameters"),
    "size_mb": (numbers.Real, "shipped MB", "the model file the toolkit loads, as a user ships it: ESPnet's "
                "model.pth, NeMo's .nemo (MB)"),
    "download_mb": (numbers.Real, "download MB", "the shipped model file gzip-compressed (level 6, "
                    "pinch.deploy.download): what a user downloads, which shrinks with the zeros"),
    "compact_mb": (numbers.Real, "compact MB", "pinch's compact file of the same weights (bitmask + non-zeros), "
                   "the same measure in both toolkits (MB)"),
    "wer": (dict, "WER", "test set -> WER in percent"),
    "significance": (dict, "MAPSSWE", "test set -> {p_value, lossless} vs the reference model"),
    "reference": (str, "verdict vs", "the model the MAPSSWE verdict compares with: dense_finetune "
                  "(the dense model trained as long) where the run has one, else dense"),
    "wall_time_s": (numbers.Real, "time s", "compression wall time in seconds"),
    "attempts": (numbers.Integral, "attempts", "training attempts that wall time sums (a killed one counts; the "
                 "next resumes from its last checkpoint)"),
    "granularity": (str, "granularity", "unstructured or structured (whole units, heads, channels)"),
    "variant": (str, "variant", "what the pass changed from its method's defaults (pinch.config.variant): "
                "rows cost (group_cost: rows), block gates (block_gates: true), settled (settle_at < 1), "
                "distilled (distill_weight > 0)"),
    "seed": (numbers.Integral, "seed", "seed of the compression run, where it was set"),
    "epochs": (numbers.Integral, "epochs", "epochs of the compression pass, where the recipe set a longer one "
               "(--compress_epochs)"),
    "model_sparsity": (numbers.Real, "model sparsity", "zeros over every parameter of the model (0..1)"),
    "steps": (numbers.Integral, "steps", "optimizer updates of the compression run"),
    "peak_rss_mb": (numbers.Real, "peak MB", "peak resident memory of the training process, MB"),
    "reach_step": (numbers.Integral, "reach step", "sspg: the update at which sparsity first reached the target"),
    "reach_s": (numbers.Real, "reach s", "sspg: seconds of training until sparsity first reached the target"),
    "mapsswe": (dict, "MAPSSWE all", "reference -> test set -> {p_value, lossless, reference_hyps}: every test "
                "made, and the digest of the reference's hypotheses it was made against"),
    "dense_fingerprint": (str, "dense", "fingerprint of the dense model the row descends from "
                          "(pinch.export.checkpoint.fingerprint)"),
    "preset": (str, "gated", "TTS: the layers the pass gated (its preset: auto is the text encoder; a list such "
               "as [tacotron2, tacotron2_decoder] adds the decoder)"),
    "gated_params": (numbers.Integral, "gated params", "TTS: parameters of the gated weight matrices (their share of "
                     "params: how much of the model the pass compressed)"),
    "encoder_params": (numbers.Integral, "encoder params", "TTS: parameters of the text encoder"),
    "encoder_sparsity": (numbers.Real, "encoder sparsity", "TTS: share of zeros in the encoder (0..1)"),
    "mcd": (numbers.Real, "MCD dB", "TTS: mel-cepstral distortion to the recordings (DTW)"),
    "log_f0_rmse": (numbers.Real, "log-F0 RMSE", "TTS: log-F0 RMSE to the recordings"),
    "cer": (dict, "ASR-CER", "TTS: test set -> CER in percent of the synthesized speech by an ASR model"),
    "pocketsphinx_cer": (numbers.Real, "pocketsphinx CER", "TTS: CER in percent of the synthesized speech by "
                         "pocketsphinx's en-us model (trained on human speech) with the corpus's words "
                         "(pinch.scoring.judges)"),
    "pocketsphinx_mapsswe": (dict, "pocketsphinx MAPSSWE", "TTS: reference -> test set -> {p_value, lossless, "
                             "reference_hyps}: pocketsphinx's errors against the reference model's"),
    "cross_cer": (dict, "cross ASR-CER", "TTS: test set -> CER in percent of the synthesized speech by the other "
                  "toolkit's ASR model (a judge the TTS recipe's own toolkit did not make)"),
    "cross_mapsswe": (dict, "cross MAPSSWE", "TTS: reference -> test set -> {p_value, lossless, reference_hyps}: the "
                      "other toolkit's ASR errors against the reference model's"),
    "dnsmos_sig": (numbers.Real, "DNSMOS SIG", "TTS: DNSMOS P.835 speech quality (1-5), mean over utterances"),
    "dnsmos_bak": (numbers.Real, "DNSMOS BAK", "TTS: DNSMOS P.835 background quality (1-5), mean over utterances"),
    "dnsmos_ovrl": (numbers.Real, "DNSMOS OVRL", "TTS: DNSMOS P.835 overall quality (1-5), mean over utterances"),
    "notes": (str, "notes", "free text"),
    "date": (str, "date", "UTC time of the append (added automatically)"),
}


def check_row(row: dict, where: str = "result row") -> None:
    """Raise ValueError naming (after `where`) the first unknown, missing, mistyped or
    non-finite key: the table is the record, and a NaN read from it is a wrong result."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: must be a JSON object, got {type(row).__name__}")
    for key, value in row.items():
        if key not in COLUMNS:
            raise ValueError(f"{where}: unknown key {key!r}; known keys: {list(COLUMNS)}")
        typ = COLUMNS[key][0]
        if value is not None and (not isinstance(value, typ) or isinstance(value, bool)):
            raise ValueError(f"{where}: key {key!r} must be {typ.__name__}, got {value!r}")
    if not row.get("system"):
        raise ValueError(f"{where}: key 'system' is required")
    found = non_finite(row)
    if found:
        raise ValueError(f"{where}: {found[0]} must be a finite number, got {found[1]}")
    if row.get("task", "asr") not in ("asr", "tts"):
        raise ValueError(f"{where}: key 'task' must be asr or tts, got {row['task']!r}")
    for key in ("target_sparsity", "sparsity", "encoder_sparsity", "model_sparsity"):
        if row.get(key) is not None and not 0.0 <= row[key] <= 1.0:
            raise ValueError(f"{where}: key {key!r} must be in [0, 1], got {row[key]}")
    for key in ("wer", "cer"):
        for test_set, rate in (row.get(key) or {}).items():
            if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or rate < 0:
                raise ValueError(f"{where}: {key}[{test_set!r}] must be a number >= 0, got {rate!r}")
    for test_set, sig in (row.get("significance") or {}).items():
        _check_significance(sig, f"significance[{test_set!r}]", where)
    for key in ("mapsswe", "pocketsphinx_mapsswe"):
        for reference, tests in (row.get(key) or {}).items():
            if not isinstance(tests, dict):
                raise ValueError(f"{where}: {key}[{reference!r}] must map test sets to results, got {tests!r}")
            for test_set, sig in tests.items():
                _check_significance(sig, f"{key}[{reference!r}][{test_set!r}]", where)


def _check_significance(sig, field: str, where: str) -> None:
    """One MAPSSWE result: a p-value in [0, 1] and a lossless verdict."""
    if not isinstance(sig, dict) or not {"p_value", "lossless"} <= set(sig):
        raise ValueError(f"{where}: {field} must hold p_value and lossless, got {sig!r}")
    p = sig["p_value"]
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: {field}['p_value'] must be a number in [0, 1], got {p!r}")
    if not isinstance(sig["lossless"], bool):
        raise ValueError(f"{where}: {field}['lossless'] must be true or false, got {sig['lossless']!r}")
    if not isinstance(sig.get("reference_hyps", ""), str):
        raise ValueError(f"{where}: {field}['reference_hyps'] must be a digest string, got {sig['reference_hyps']!r}")


# MAPSSWE references, preferred first: a verdict against a dense model that trained as long
# as the compressed one does not credit pruning with the extra epochs.
REFERENCES = ("dense_finetune", "dense")


def significance_of(compare: dict) -> dict:
    """A row's record of one MAPSSWE test (its compare.json): p-value, verdict, and where the
    test recorded it the digest of the reference's hypotheses (which reference it was)."""
    out = {"p_value": compare["p_value"], "lossless": compare["lossless"]}
    if "hyp_a_sha256" in compare:
        out["reference_hyps"] = compare["hyp_a_sha256"][:16]
    return out


def all_tests(tests: dict[str, dict[str, dict]]) -> dict:
    """The ``mapsswe`` column: ``reference -> test set -> significance_of(compare.json)``."""
    return {ref: {d: significance_of(c) for d, c in per_set.items()} for ref, per_set in tests.items()}


def verdicts(tests: dict[str, dict[str, dict]]) -> tuple[str, dict, list[str]]:
    """From ``reference -> test set -> compare.json``: the verdict's reference, its
    ``significance`` column, and a note per test against any other reference."""
    known = [r for r in REFERENCES if r in tests]
    if not known:
        raise ValueError(f"no MAPSSWE test against {' or '.join(REFERENCES)} (have {sorted(tests)})")
    ref = known[0]
    significance = {d: significance_of(c) for d, c in tests[ref].items()}
    notes = [f"vs {other} on {d}: p={c['p_value']:.3g} {'lossless' if c['lossless'] else 'worse'}"
             for other in sorted(tests) if other != ref for d, c in tests[other].items()]
    return ref, significance, notes


def recorded(table_dir: Path, toolkit: str, dense_fingerprint: str, systems) -> list[str]:
    """Which of ``systems`` the table holds a row of, from the dense model ``dense_fingerprint``."""
    have = {r["system"] for r in read_rows(table_dir)
            if r.get("toolkit") == toolkit and r.get("dense_fingerprint") == dense_fingerprint}
    return [s for s in systems if s in have]


def read_rows(table_dir: Path) -> list[dict]:
    """The rows of TABLE_DIR/results.json, each checked as an appended one is: a hand-edited
    row that is not a row stops every reader with the file and row named."""
    path = Path(table_dir) / JSON_TABLE
    if not path.exists():
        if (Path(table_dir) / MD_TABLE).exists():
            raise ValueError(f"{Path(table_dir) / MD_TABLE} exists without {path}: refusing "
                             f"to overwrite a table this writer did not create")
        return []
    rows = read_json(path)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of rows")
    for i, row in enumerate(rows, 1):
        check_row(row, f"{path}: row {i}")
    return rows


def append_result(table_dir: Path, row: dict) -> dict:
    """Append `row` (dated) to TABLE_DIR/results.{json,md}; returns the stored row."""
    check_row(row)
    table_dir = Path(table_dir)
    table_dir.mkdir(parents=True, exist_ok=True)
    row = dict(row, date=row.get("date") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    with open(table_dir / ".results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = read_rows(table_dir) + [row]
        write_json_atomic(table_dir / JSON_TABLE, rows)
        write_text_atomic(table_dir / MD_TABLE, render_markdown(rows))
    return row


# Columns of one task's table only; the rest are shared.
TTS_ONLY = ("task", "preset", "gated_params", "cross_cer", "cross_mapsswe", "encoder_params", "encoder_sparsity", "mcd", "log_f0_rmse", "cer", "pocketsphinx_cer",
            "pocketsphinx_mapsswe", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")
ASR_ONLY = ("sparsity", "size_mb", "download_mb", "compact_mb", "wall_time_s", "attempts", "wer")
# In results.json only: the sweep report reads them (python -m pinch.sweep).
JSON_ONLY = ("seed", "epochs", "sparsity_trained", "model_sparsity", "steps", "peak_rss_mb", "reach_step", "reach_s",
             "mapsswe", "dense_fingerprint", "pocketsphinx_mapsswe", "cross_cer", "cross_mapsswe")


def render_markdown(rows: list[dict]) -> str:
    """The ASR rows, then (if any) the TTS rows under their own heading and columns."""
    asr = [r for r in rows if r.get("task", "asr") == "asr"]
    tts = [r for r in rows if r.get("task") == "tts"]
    text = _render(asr, "wer", "WER", exclude=TTS_ONLY)
    if tts:
        text += "\n## TTS\n\n" + _render(tts, "cer", "ASR-CER", exclude=("task",) + ASR_ONLY)
    return text


def _render(rows: list[dict], rate_key: str, rate_name: str, exclude: tuple[str, ...]) -> str:
    """One line per row; the rate and MAPSSWE get a column per test set seen in any row."""
    test_sets = sorted({t for r in rows for t in (r.get(rate_key) or {})} |
                       {t for r in rows for t in (r.get("significance") or {})})
    scalar = [k for k in COLUMNS
              if k not in ("wer", "cer", "significance", "reference", "notes", "date") + JSON_ONLY + exclude]
    headers = [COLUMNS[k][1] for k in scalar]
    headers += [f"{rate_name} {t}" for t in test_sets] + ["verdict vs"] + [f"p {t}" for t in test_sets]
    headers += ["notes", "date"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        cells = [_cell(r.get(k)) for k in scalar]
        cells += [_cell((r.get(rate_key) or {}).get(t)) for t in test_sets]
        cells.append(_cell(r.get("reference") or ("dense" if r.get("significance") else None)))
        for t in test_sets:
            sig = (r.get("significance") or {}).get(t)
            cells.append("" if sig is None else
                         f"{sig['p_value']:.3g} ({'lossless' if sig['lossless'] else 'worse'})")
        cells += [_cell(r.get("notes")), _cell(r.get("date"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")
