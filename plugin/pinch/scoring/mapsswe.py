"""Significance of a WER difference: the matched-pair sentence-segment word error test.

Why MAPSSWE: it is NIST's standard test for two ASR systems on the same test set
(sctk's sc_stats), and the paper calls a compressed model lossless when its WER is not
significantly different from the dense model's at alpha = 0.05. sc_stats reports the
test's Z statistic; the two-tailed p-value is erfc(|Z| / sqrt(2)).
"""
from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

from pinch.data.atomic import check_outputs, write_json_atomic
from pinch.data.kaldi import check_same_ids

from .sclite import run_sclite
from .sctk import run_sctk
from .trn import read_transcripts, write_trn

ALPHA = 0.05
COMPARE = "compare.json"
_MTCH = re.compile(r"MTCH_PR_RESULTS.*?\(% Error:\s*([\d.]+)\s+([\d.]+)\).*?"
                   r"\(Z Stat:\s*(-?[\d.]+)\)\s*\(Stat Diff:\s*(\w+)\)")


def compare(ref: Path, hyp_a: Path, hyp_b: Path, out: Path, alpha: float = ALPHA,
            name_a: str = "A", name_b: str = "B") -> dict:
    """MAPSSWE between system A (e.g. dense) and B (e.g. compressed); writes OUT/compare.json.

    `lossless` is True when B is not significantly worse than A at `alpha`: p >= alpha,
    or B's WER is not above A's.
    """
    for name in (name_a, name_b):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"system name {name!r}: use letters, digits, '_', '.', '-'")
    if name_a == name_b:
        raise ValueError(f"both systems are named {name_a!r}")
    if not 0.0 < alpha < 1.0:  # a NaN too: every test would pass as lossless
        raise ValueError(f"--alpha must be in (0, 1), got {alpha}")
    out = Path(out)
    written = ["ref.word.trn", f"a_{name_a}.trn", f"b_{name_b}.trn", "mapsswe.stats.mapsswe", COMPARE]
    check_outputs({f"--out's {name}": out / name for name in written},
                  {"--ref": ref, "--hyp-a": hyp_a, "--hyp-b": hyp_b})
    out.mkdir(parents=True, exist_ok=True)
    refs = read_transcripts(ref, allow_empty=False)
    hyps = {"a": read_transcripts(hyp_a, allow_empty=True),
            "b": read_transcripts(hyp_b, allow_empty=True)}
    ids = check_same_ids(refs, hyps["a"], ref, hyp_a)
    check_same_ids(refs, hyps["b"], ref, hyp_b)
    write_trn(out / "ref.word.trn", refs, ids, "word")
    wer = {}
    for key, name in (("a", name_a), ("b", name_b)):
        # sc_stats names a system after its hypothesis file: make the names distinct.
        write_trn(out / f"{key}_{name}.trn", hyps[key], ids, "word")
        wer[key] = run_sclite(out / "ref.word.trn", out / f"{key}_{name}.trn", out,
                              f"{key}_{name}")["error_rate"]
    result = {"ref": str(ref), "hyp_a": str(hyp_a), "hyp_b": str(hyp_b), "name_a": name_a,
              "name_b": name_b, "wer_a": wer["a"], "wer_b": wer["b"], "alpha": alpha,
              "test": "MAPSSWE",
              # which hypotheses of the reference system this verdict is against (a reference
              # trained again may decode otherwise: the results table shows it)
              "hyp_a_sha256": hashlib.sha256(Path(hyp_a).read_bytes()).hexdigest()}
    if all(hyps["a"][i].split() == hyps["b"][i].split() for i in ids):
        # Identical outputs: no segment differs (sc_stats crashes on this case).
        result.update(z=0.0, p_value=1.0, significant=False)
    else:
        sgml = b"".join((out / f"{k}_{n}.sgml").read_bytes()
                        for k, n in (("a", name_a), ("b", name_b)))
        # -O relative to the output dir: sc_stats overflows a buffer (abort, "stack smashing")
        # on an output path of about 190 characters, as recipes' nested dirs reach.
        run_sctk(["sc_stats", "-p", "-t", "mapsswe", "-v", "-n", "mapsswe", "-O", "."], stdin=sgml, cwd=out)
        report = out / "mapsswe.stats.mapsswe"
        m = _MTCH.search(report.read_text(errors="replace"))
        if not m:
            raise RuntimeError(f"{report}: no MTCH_PR_RESULTS line in sc_stats' report")
        z = float(m.group(3))
        p = math.erfc(abs(z) / math.sqrt(2))
        result.update(z=z, p_value=p, significant=p < alpha, sctk_stat_diff=m.group(4))
    result["lossless"] = (not result["significant"]) or wer["b"] <= wer["a"]
    write_json_atomic(out / COMPARE, result)
    return result


def format_compare(result: dict) -> str:
    mark = "lossless" if result["lossless"] else "NOT lossless"
    return (f"{result['name_a']} WER {result['wer_a']:.2f}% vs {result['name_b']} WER "
            f"{result['wer_b']:.2f}%: MAPSSWE p = {result['p_value']:.4g} "
            f"(alpha {result['alpha']}) -> {mark}")
