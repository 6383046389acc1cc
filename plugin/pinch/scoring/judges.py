"""Judges of speech that did not train on the project's corpus: pocketsphinx's CER and DNSMOS.

Why: the recipes' ASR-CER comes from an ASR model trained on the same synthesized corpus
(espeak-ng, flite and festival voices) as the TTS model it judges, so it may hear what those
voices share rather than what a listener hears. Two judges trained elsewhere stand beside it:

- intelligibility: pocketsphinx's bundled en-us acoustic model (trained on recordings of human
  speech), its search restricted to the corpus's words: a dictionary of the test sentences' and
  the training text's words from pocketsphinx's bundled cmudict, and a trigram ARPA model of the
  training text built by pocketsphinx's own ``ArpaBoLM`` (the test words join it as unigrams, so
  it never sees a test sentence's word order). Its hypotheses are scored as the ASR-CER is
  (``asr_cer``: sclite, jiwer cross-check) and compared by MAPSSWE with a reference system's.
- quality: DNSMOS P.835 (speechmos's bundled ONNX models, trained on human ratings): SIG (the
  speech), BAK (the background) and OVRL (overall), 1 to 5, per utterance and their means.

Both take 16 kHz audio: higher rates are resampled (soxr); lower ones are refused, since
upsampling cannot add the band the models were trained on.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pocketsphinx
import soxr
from pocketsphinx.lm import ArpaBoLM
from speechmos import dnsmos

from pinch.data.atomic import check_outputs, write_json_atomic, write_text_atomic
from pinch.data.kaldi import check_same_ids, read_table
from pinch.deploy.onnx_files import onnx_session

from .asr_cer import asr_cer
from .mapsswe import compare
from .results import significance_of
from .tts_metrics import load_audio

SR = 16000
JUDGES = "judges.json"
POCKETSPHINX = "pocketsphinx"  # OUT/pocketsphinx: dictionary, LM, hyp, scores, MAPSSWE tests
DNSMOS_KEYS = {"sig": "sig_mos", "bak": "bak_mos", "ovrl": "ovrl_mos", "p808": "p808_mos"}


def load_16k(path: str, where: str) -> np.ndarray:
    """Mono samples at 16 kHz in [-1, 1]: higher rates resampled, lower ones refused."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{where}: audio file {path} does not exist")
    audio, sr = load_audio(path, where)
    if sr < SR:
        raise ValueError(f"{where}: audio {path} is {sr} Hz; the judges need at least {SR} Hz")
    if sr != SR:
        audio = soxr.resample(audio, sr, SR)
    return np.clip(audio, -1.0, 1.0)


def _words(text_files: list[Path]) -> list[list[str]]:
    return [s.split() for f in text_files for s in read_table(f).values()]


def _cmudict() -> dict[str, list[str]]:
    """Word -> pronunciations of pocketsphinx's bundled cmudict (alternates as ``word(2)``)."""
    prons: dict[str, list[str]] = {}
    with open(pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"), encoding="utf-8") as f:
        for line in f:
            word, _, phones = line.partition(" ")
            prons.setdefault(word.split("(")[0], []).append(phones.strip())
    return prons


def build_lexicon(vocab_text: list[Path], lm_text: list[Path], out: Path) -> dict:
    """OUT/words.dict (the words of both texts that cmudict spells) and OUT/lm.arpa (a trigram
    model of the training sentences whose words it spells, the test words added as unigrams)."""
    prons = _cmudict()
    sentences = _words(lm_text)
    words = sorted({w for s in _words(vocab_text) + sentences for w in s})
    known = [w for w in words if w in prons]
    kept = [s for s in sentences if all(w in prons for w in s)]
    if not kept:
        raise ValueError(f"no sentence of {', '.join(map(str, lm_text))} has all its words in "
                         "pocketsphinx's cmudict: no language model to build")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "words.dict", "".join(
        f"{w if i == 0 else f'{w}({i + 1})'} {p}\n" for w in known for i, p in enumerate(prons[w])))
    write_text_atomic(out / "vocab.txt", "".join(f"{w}\n" for w in known))
    lm = ArpaBoLM(text="".join(" ".join(s) + "\n" for s in kept), add_start=True, word_file=str(out / "vocab.txt"))
    lm.compute()
    lm.write_file(str(out / "lm.arpa"))
    return {"vocabulary": len(known), "oov_words": [w for w in words if w not in prons],
            "lm_sentences": len(kept), "lm_sentences_skipped": len(sentences) - len(kept)}


class Recognizer:
    """pocketsphinx's en-us acoustic model with OUT's dictionary and language model."""

    def __init__(self, lexicon_dir: Path):
        self.decoder = pocketsphinx.Decoder(
            hmm=pocketsphinx.get_model_path("en-us/en-us"), dict=str(lexicon_dir / "words.dict"),
            lm=str(lexicon_dir / "lm.arpa"), samprate=SR, loglevel="FATAL")

    def __call__(self, audio: np.ndarray) -> str:
        self.decoder.start_utt()
        self.decoder.process_raw(np.round(audio * 32767).astype("<i2").tobytes(), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp else ""


class DNSMOS(dnsmos.DNSMOS):
    """speechmos's DNSMOS P.835 on the threads OMP_NUM_THREADS grants (all cores when unset, as
    torch takes them): its ONNX runs are the judges' slowest part, 1.8 s an utterance at 1 thread
    and 1.2 s at 2 (AMD EPYC, 12 utterances), and jobs that share the cores set the variable."""

    def __init__(self):
        models = Path(dnsmos.__file__).parent / "dnsmos_models"
        self.primary_model_path = str(models / "sig_bak_ovr.onnx")
        threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)
        self.onnx_sess, self.p808_onnx_sess = (
            onnx_session(m, threads) for m in (models / "sig_bak_ovr.onnx", models / "model_v8.onnx"))

    def scores(self, audio: np.ndarray) -> dict:
        """SIG, BAK, OVRL (and P.808) of one 16 kHz utterance (looped to the model's 9 s)."""
        r = self(audio.astype(np.float32), SR, False)
        return {k: float(r[v]) for k, v in DNSMOS_KEYS.items()}


def load_set(wav_scp: Path, text: Path) -> dict[str, np.ndarray]:
    """utt -> 16 kHz samples of every utterance of `wav_scp`, which must hold `text`'s ids."""
    wavs = read_table(wav_scp)
    return {u: load_16k(wavs[u], f"{wav_scp}: {u}") for u in check_same_ids(read_table(text), wavs, text, wav_scp)}


def pocketsphinx_cer(wav_scp: Path, text: Path, audio: dict[str, np.ndarray], lm_text: list[Path],
                     vocab_text: list[Path], out: Path, references: dict[str, Path]) -> dict:
    """pocketsphinx's hypotheses of `audio` (``load_set``) in OUT/hyp, scored against `text`,
    and a MAPSSWE test against each reference's hypotheses (OUT/mapsswe_vs_NAME)."""
    lexicon = build_lexicon(vocab_text, lm_text, out)
    recognize = Recognizer(out)
    wavs = read_table(wav_scp)
    by_path = {wavs[u]: a for u, a in audio.items()}
    cer = asr_cer(wav_scp, text, lambda paths: [recognize(by_path[p]) for p in paths], out)
    tests = {name: significance_of(compare(text, hyp, out / "hyp", out / f"mapsswe_vs_{name}",
                                           name_a=name, name_b="judged"))
             for name, hyp in references.items()}
    return {"acoustic_model": "en-us (pocketsphinx's bundled model)", "cer": cer["cer"], "wer": cer["wer"],
            "normalized": cer["normalized"], **lexicon, "mapsswe": tests}


def dnsmos_scores(audio: dict[str, np.ndarray]) -> dict:
    """Mean SIG, BAK, OVRL (and P.808) over utterances, and each utterance's."""
    model = DNSMOS()
    per_utt = {u: model.scores(a) for u, a in sorted(audio.items())}
    return {**{k: float(np.mean([s[k] for s in per_utt.values()])) for k in DNSMOS_KEYS}, "per_utterance": per_utt}


def judge(wav_scp: Path, text: Path, lm_text: list[Path], out: Path, vocab_text: list[Path] | None = None,
          references: dict[str, Path] | None = None) -> dict:
    """Both judges of every utterance of `wav_scp` (its sentences in `text`); OUT/judges.json last.

    `lm_text`: the corpus's training text(s) (Kaldi ``uttid words``); `vocab_text`: the test
    sentences whose words the recognizer may say (default `text`; systems judged alike pass the
    whole test set, whichever part of it each spoke); `references`: name -> another system's
    OUT/pocketsphinx/hyp on the same sentences, each a MAPSSWE test.
    """
    out = Path(out)
    vocab_text = [Path(p) for p in vocab_text or [text]]
    references = {n: Path(p) for n, p in (references or {}).items()}
    inputs = {"--wav-scp": wav_scp, "--text": text} | {f"--lm-text {p}": p for p in lm_text} | \
        {f"--vocab-text {p}": p for p in vocab_text} | {f"--compare {n}": p for n, p in references.items()}
    check_outputs({f"--out's {JUDGES}": out / JUDGES, f"--out's {POCKETSPHINX}": out / POCKETSPHINX}, inputs)
    audio = load_set(wav_scp, text)
    result = {"utterances": len(audio),
              POCKETSPHINX: pocketsphinx_cer(wav_scp, text, audio, [Path(p) for p in lm_text], vocab_text,
                                             out / POCKETSPHINX, references),
              "dnsmos": dnsmos_scores(audio)}
    write_json_atomic(out / JUDGES, result)
    return result


def format_judges(result: dict) -> str:
    ps, mos = result[POCKETSPHINX], result["dnsmos"]
    tests = "".join(f"  MAPSSWE vs {n}: p = {t['p_value']:.3g} ({'no significant increase' if t['lossless'] else 'worse'})"
                    for n, t in ps["mapsswe"].items())
    return (f"pocketsphinx CER {ps['cer']:.2f}% WER {ps['wer']:.2f}%  DNSMOS SIG {mos['sig']:.3f} "
            f"BAK {mos['bak']:.3f} OVRL {mos['ovrl']:.3f}  ({result['utterances']} utts){tests}")
