"""WER and CER with sclite, cross-checked with jiwer.

Why both: sclite is what ESPnet and the papers report; jiwer is an independent
implementation, so a scoring bug (wrong file, id mismatch) shows as a disagreement.
sclite aligns with weights substitution 4, insertion 3, deletion 3, jiwer with unit
weights (plain Levenshtein). Both therefore must find the same optimal cost under
sclite's weights (checked exactly with rapidfuzz, jiwer's edit-distance engine), and
sclite's error count can only be >= jiwer's: they agree on word error rates in
practice, while at high character error rates sclite may count a few more errors
(it prefers one substitution to an insertion plus a deletion).

Text is scored twice: as written (case-sensitive, sclite's ``-s``: a model that writes
capitals and punctuation is held to them, as jiwer holds it) and normalized the way the Open
ASR Leaderboard scores English (Whisper's English normalizer: lower case, punctuation removed,
spellings and numbers standardized), in OUT/normalized/. Both are named in the result.
"""
from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import jiwer
from rapidfuzz.distance import Levenshtein

from pinch.data.atomic import check_outputs, write_json_atomic
from pinch.data.kaldi import check_same_ids

from .by_source import sources_of
from .sctk import run_sctk
from .trn import read_transcripts, write_trn

RESULT = "result.json"
UNITS = ("word", "char")
SCLITE_REPORTS = ("sys", "raw", "pra", "sgml")  # what run_sclite's options make sclite write
_SUM = re.compile(r"\|\s*Sum\s*\|\s*(\d+)\s+(\d+)\s*\|\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\|")


def sclite_counts(raw_report: Path) -> dict:
    """Counts of the `Sum` row of an sclite rsum (.raw) report."""
    m = _SUM.search(Path(raw_report).read_text(errors="replace"))
    if not m:
        raise RuntimeError(f"{raw_report}: no 'Sum' row in sclite's report")
    snt, n, corr, sub, dele, ins, err, serr = map(int, m.groups())
    return {"sentences": snt, "ref_tokens": n, "correct": corr, "substitutions": sub,
            "deletions": dele, "insertions": ins, "errors": err, "sentence_errors": serr,
            "error_rate": 100.0 * err / n if n else 0.0}


def run_sclite(ref_trn: Path, hyp_trn: Path, out_dir: Path, name: str) -> dict:
    """sclite with ESPnet's options and case-sensitive (``-s``: by default sclite folds case,
    which jiwer does not); writes NAME.{sys,raw,pra,dtl,sgml} in out_dir."""
    run_sctk(["sclite", "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-n", name,
              "-i", "rm", "-s", "-o", "all", "sgml", "-O", str(out_dir)])
    return sclite_counts(Path(out_dir) / f"{name}.raw")


SCLITE_WEIGHTS = (3, 3, 4)  # insertion, deletion, substitution


def jiwer_rates(refs: list[str], hyps: list[str]) -> dict:
    """WER and CER (percent) of the same pairs by jiwer."""
    refs = [" ".join(r.split()) for r in refs]
    hyps = [" ".join(h.split()) for h in hyps]
    return {"wer": 100.0 * jiwer.process_words(refs, hyps).wer,
            "cer": 100.0 * jiwer.process_characters(refs, hyps).cer}


def sclite_cost(counts: dict) -> int:
    ins, dele, sub = SCLITE_WEIGHTS
    return ins * counts["insertions"] + dele * counts["deletions"] + sub * counts["substitutions"]


def optimal_cost(refs: list[str], hyps: list[str], unit: str) -> int:
    """Minimal alignment cost under sclite's weights, computed independently of sclite."""
    split = (lambda t: t.split()) if unit == "word" else (lambda t: " ".join(t.split()))
    return sum(Levenshtein.distance(split(r), split(h), weights=SCLITE_WEIGHTS)
               for r, h in zip(refs, hyps))


NORMALIZED = "normalized"  # OUT/normalized/: the same texts scored after normalize_english


@functools.cache
def _english_normalizer():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize_english(text: str) -> str:
    """The Open ASR Leaderboard's English normalizer (Whisper's), as installed with NeMo."""
    return " ".join(_english_normalizer()(text).split())


def score(ref: Path, hyp: Path, out: Path) -> dict:
    """Score Kaldi text files as written (OUT) and normalized (OUT/normalized); writes trn files,
    sclite reports and OUT/result.json (with the WER of each source where the reference's data
    dir has a utt2source, and the normalized WER and CER under ``normalized``).

    Raises if sclite's alignment is not optimal or counts fewer errors than jiwer
    (either means the two did not score the same pairs), naming the cause where it finds one.
    """
    out = Path(out)
    check_outputs({f"--out's {name}": out / name for name in _written()} |
                  {f"--out's {NORMALIZED}/{name}": out / NORMALIZED / name for name in _written()},
                  {"--ref": ref, "--hyp": hyp})
    refs = read_transcripts(ref, allow_empty=False)
    hyps = read_transcripts(hyp, allow_empty=True)
    ids = check_same_ids(refs, hyps, ref, hyp)
    result = {"ref": str(ref), "hyp": str(hyp), "scoring": "as written (case-sensitive)",
              **_score_texts(refs, hyps, ids, out, f"{ref} vs {hyp}")}
    groups = sources_of(ref, ids)
    if groups:
        result["by_source"] = _score_sources(groups, refs, hyps, out / "by_source")
        if sum(r["errors"] for r in result["by_source"].values()) != result["word"]["errors"]:
            raise RuntimeError(f"sclite's errors per source do not add up to its total on {ref} vs {hyp}")
    norm_refs = {i: normalize_english(t) for i, t in refs.items()}
    norm_hyps = {i: normalize_english(t) for i, t in hyps.items()}
    if not any(norm_refs[i] for i in ids):
        raise ValueError(f"{ref}: every reference is empty once normalized (no words to score)")
    normalized = _score_texts(norm_refs, norm_hyps, ids, out / NORMALIZED, f"{ref} vs {hyp}, normalized")
    normalized["scoring"] = "normalized (Whisper's English normalizer, as the Open ASR Leaderboard)"
    write_json_atomic(out / NORMALIZED / RESULT, normalized)
    result[NORMALIZED] = {k: normalized[k] for k in ("scoring", "wer", "cer")}
    write_json_atomic(out / RESULT, result)
    return result


def _written() -> list[str]:
    return [f"{side}.{unit}.trn" for unit in UNITS for side in ("ref", "hyp")] + \
        [f"{unit}.{ext}" for unit in UNITS for ext in SCLITE_REPORTS] + [RESULT]


def _score_texts(refs: dict, hyps: dict, ids: list[str], out: Path, what: str) -> dict:
    """sclite's word and character scores of the pairs in OUT, checked against jiwer."""
    out.mkdir(parents=True, exist_ok=True)
    result = {"utterances": len(ids)}
    for unit in UNITS:
        write_trn(out / f"ref.{unit}.trn", refs, ids, unit)
        write_trn(out / f"hyp.{unit}.trn", hyps, ids, unit)
        result[unit] = run_sclite(out / f"ref.{unit}.trn", out / f"hyp.{unit}.trn", out, f"{unit}")
    result["wer"], result["cer"] = result["word"]["error_rate"], result["char"]["error_rate"]
    pairs = [refs[i] for i in ids], [hyps[i] for i in ids]
    result["jiwer"] = jiwer_rates(*pairs)
    for unit, key in (("word", "wer"), ("char", "cer")):
        if sclite_cost(result[unit]) != optimal_cost(*pairs, unit) or \
                result[key] < result["jiwer"][key] - 1e-9:
            raise RuntimeError(f"sclite ({key.upper()} {result[key]:.3f}%) and jiwer "
                               f"({result['jiwer'][key]:.3f}%) disagree on {what}{_cause(*pairs)}")
    return result


# Characters sclite's trn format reads as markup (alternations, optionally deletable words,
# the utterance id in parentheses) where a transcript is plain text to jiwer.
TRN_MARKUP = re.compile(r"[{}/]")


def _cause(refs: list[str], hyps: list[str]) -> str:
    """What makes the two scorers read the texts differently, where it is in the texts."""
    found = sorted({c for t in refs + hyps for c in TRN_MARKUP.findall(t)})
    if found:
        return f": the texts hold {' '.join(found)}, which sclite's trn format reads as markup"
    return ""


def _score_sources(groups: dict[str, list[str]], refs: dict, hyps: dict, out: Path) -> dict:
    """sclite word scores of each source's utterances (reports in OUT/SOURCE.*)."""
    out.mkdir(exist_ok=True)
    scores = {}
    for source, members in groups.items():
        ref_trn, hyp_trn = out / f"{source}.ref.trn", out / f"{source}.hyp.trn"
        write_trn(ref_trn, refs, members, "word")
        write_trn(hyp_trn, hyps, members, "word")
        counts = run_sclite(ref_trn, hyp_trn, out, source)
        scores[source] = {"utterances": len(members), "ref_tokens": counts["ref_tokens"],
                          "errors": counts["errors"], "wer": counts["error_rate"]}
    return scores


def normalized_markdown(scores: dict[str, dict]) -> list[str]:
    """RESULTS.md's lines that name both scorings: the tables above are of the text as written,
    this one of the same texts normalized (test sets scored before normalization existed: none)."""
    both = {dset: r for dset, r in scores.items() if NORMALIZED in r}
    if not both:
        return []
    first = next(iter(both.values()))
    return ["### WER and CER, normalized", "",
            f"The WER and CER tables score the text {first['scoring']}; this one scores it "
            f"{first[NORMALIZED]['scoring']}.", "",
            "|dataset|WER|CER|", "|---|---|---|",
            *(f"|{dset}|{r[NORMALIZED]['wer']:.2f}|{r[NORMALIZED]['cer']:.2f}|" for dset, r in both.items()), ""]


def format_result(result: dict) -> str:
    w = result["word"]
    by_source = "".join(f"\n  {source}: WER {r['wer']:.2f}% ({r['utterances']} utts)"
                        for source, r in (result.get("by_source") or {}).items())
    norm = result.get(NORMALIZED)
    return (f"WER {result['wer']:.2f}% (S {w['substitutions']} D {w['deletions']} "
            f"I {w['insertions']} / {w['ref_tokens']} words, {w['sentences']} utts)  "
            f"CER {result['cer']:.2f}%  [jiwer WER {result['jiwer']['wer']:.2f}% "
            f"CER {result['jiwer']['cer']:.2f}%]"
            + (f"  normalized: WER {norm['wer']:.2f}% CER {norm['cer']:.2f}%" if norm else "") + by_source)


def print_result(result: dict) -> None:
    print(format_result(result), file=sys.stdout)
