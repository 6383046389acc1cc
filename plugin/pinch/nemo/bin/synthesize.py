"""Synthesize sentences with a NeMo spectrogram generator .nemo (FastPitch), as a user without pinch would.

The model is restored with plain NeMo (``SpectrogramGenerator.restore_from``: a baked model
is an ordinary ``FastPitchModel``), each sentence goes through ``parse`` +
``generate_spectrogram``, and the spectrogram becomes a waveform by Griffin-Lim
(``librosa.feature.inverse.mel_to_audio`` with the model's own preprocessor parameters:
natural-log magnitude mel with an additive guard, slaney filters, its fmin/fmax) or, with
``--vocoder``, by a NeMo vocoder .nemo (``Vocoder.restore_from`` +
``convert_spectrogram_to_audio``, e.g. HiFi-GAN). One process serves several models
(``--set`` repeated): NeMo's import is paid once.

Each OUT_DIR gets ``wav/<utt>.wav`` (the model's sample rate, 16-bit), ``wav.scp``,
``manifest.json`` (a NeMo manifest of the waveforms, for ASR scoring) and keeps ``text``
to the sentences spoken: a sentence whose synthesis fails is named in ``OUT_DIR/skipped``
and the others are still spoken.

``--write_tokens MODEL FILE`` writes instead the characters a model's tokenizer can speak,
one per line, a space as ``<space>``: the token list ``python -m pinch.data check-text``
checks sentences against before synthesis.

    python -m pinch.nemo.bin.synthesize --write_tokens exp/fastpitch/model.nemo out/tokens.txt
    python -m pinch.data check-text --text data/tts/test/text --token-list out/tokens.txt \\
        --out-text out/text --bad out/skipped
    python -m pinch.nemo.bin.synthesize --set exp/fastpitch/model.nemo out/text out
"""
import argparse
import itertools
import json
import sys
import unicodedata
from pathlib import Path

import numpy as np

from pinch.data.atomic import atomic_file, write_text_atomic
from pinch.data.kaldi import read_table

SPACE = "<space>"
# Characters tried against a tokenizer's text preprocessing (Latin letters with their accents,
# punctuation, typographic quotes and dashes): those it turns into its own tokens are speakable.
CANDIDATES = tuple(itertools.chain(range(0x21, 0x250), range(0x2010, 0x2050)))


def log(msg):
    print(f"pinch.nemo: {msg}", file=sys.stderr, flush=True)


def restore(path, kind):
    """A NeMo model of ``kind`` (spectrogram generator / vocoder) from a .nemo, with plain NeMo."""
    from nemo.collections.tts.models.base import SpectrogramGenerator, Vocoder

    from pinch.nemo.archive import check_nemo_file

    base = {"spectrogram generator": SpectrogramGenerator, "vocoder": Vocoder}[kind]
    path = check_nemo_file(path)
    try:
        model = base.restore_from(str(path), map_location="cpu")
    except Exception as err:  # NeMo raises many kinds for a file of the wrong model family
        raise ValueError(f"{path}: cannot be restored as a NeMo {kind} ({type(err).__name__}: {err})") from None
    if not isinstance(model, base):
        raise ValueError(f"{path}: holds a {type(model).__name__}, not a NeMo {kind}")
    return model.eval()


def speakable_characters(tokenizer):
    """The characters the tokenizer keeps (after its own text preprocessing, e.g. lower case
    and accents stripped); a space as SPACE."""
    tokens = set(getattr(tokenizer, "tokens", []))
    single = {t for t in tokens if len(t) == 1}
    if " " not in single:
        raise ValueError(f"{type(tokenizer).__name__} has no space token: not a character tokenizer, "
                         "so a character check of the sentences would not apply")
    pre = getattr(tokenizer, "text_preprocessing_func", None) or (lambda x: x)
    chars = {SPACE} | {c for c in single if c != " "}
    for cp in CANDIDATES:
        c = chr(cp)
        if unicodedata.category(c).startswith("C"):
            continue
        mapped = pre(c)
        if mapped and all(m in single and m != " " for m in mapped):
            chars.add(c)
    return sorted(chars)


def write_tokens(model_path, out):
    model = restore(model_path, "spectrogram generator")
    tokenizer = getattr(model, "vocab", None) or getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError(f"{model_path}: {type(model).__name__} has no text tokenizer (model.vocab)")
    chars = speakable_characters(tokenizer)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(out), "".join(c + "\n" for c in chars))
    return len(chars)


def mel_params(model):
    """What Griffin-Lim needs of the model's AudioToMelSpectrogramPreprocessor config."""
    p = model.cfg.preprocessor
    sr = int(p.sample_rate)
    if p.get("normalize"):
        raise ValueError(f"the model's preprocessor normalizes its features ({p.normalize}): Griffin-Lim "
                         "cannot invert them; pass --vocoder")
    if not p.get("log", True):
        raise ValueError("the model's mel spectrogram is not logarithmic; only log mel is supported")
    if p.get("preemph"):
        raise ValueError(f"the model's preprocessor applies pre-emphasis ({p.preemph}); Griffin-Lim would "
                         "return pre-emphasized speech: pass --vocoder")
    win = p.get("n_window_size") or int(p.window_size * sr)
    hop = p.get("n_window_stride") or int(p.window_stride * sr)
    n_fft = p.get("n_fft") or 2 ** int(np.ceil(np.log2(win)))
    guard = p.get("log_zero_guard_value", 2 ** -24)
    return {"sr": sr, "n_fft": int(n_fft), "win_length": int(win), "hop_length": int(hop),
            "fmin": float(p.get("lowfreq", 0) or 0), "fmax": float(p.get("highfreq") or sr / 2),
            "power": float(p.get("mag_power", 2.0)), "guard": float(guard),
            "guard_type": p.get("log_zero_guard_type", "add"), "mel_norm": p.get("mel_norm", "slaney"),
            "window": p.get("window", "hann")}


def griffin_lim(log_mel, params, n_iter=32):
    """Waveform of a [n_mels, frames] natural-log mel spectrogram by Griffin-Lim."""
    import librosa

    mel = np.exp(log_mel.astype(np.float64))
    if params["guard_type"] == "add":
        mel = np.maximum(mel - params["guard"], 0.0)
    return librosa.feature.inverse.mel_to_audio(
        mel, sr=params["sr"], n_fft=params["n_fft"], hop_length=params["hop_length"],
        win_length=params["win_length"], window=params["window"], center=True, power=params["power"],
        n_iter=n_iter, fmin=params["fmin"], fmax=params["fmax"], htk=False, norm=params["mel_norm"]
    ).astype(np.float32)


class Synthesizer:
    """Sentences to waveforms with one spectrogram generator and GL or a vocoder."""

    def __init__(self, model_path, vocoder=None, griffin_lim_iters=32):
        self.model = restore(model_path, "spectrogram generator")
        self.vocoder = vocoder
        self.iters = griffin_lim_iters
        if vocoder is None:
            self.params = mel_params(self.model)  # what Griffin-Lim needs, and can invert
        else:
            check_vocoder(self.model, vocoder, model_path)
            self.params = {"sr": int(self.model.cfg.preprocessor.sample_rate)}

    def __call__(self, text):
        import torch

        with torch.no_grad():
            tokens = self.model.parse(text)
            if tokens.numel() == 0:
                raise ValueError("the tokenizer keeps nothing of it")
            spec = self.model.generate_spectrogram(tokens=tokens)
            if spec.shape[-1] == 0:
                raise ValueError("the model predicted no frame")
            if self.vocoder is not None:
                audio = self.vocoder.convert_spectrogram_to_audio(spec=spec)[0].cpu().numpy()
            else:
                audio = griffin_lim(spec[0].cpu().numpy(), self.params, self.iters)
        return np.clip(audio, -1.0, 1.0), self.params["sr"]


def frame_settings(pre):
    """Sample rate, hop and mel channels of an AudioToMelSpectrogramPreprocessor config: what a
    spectrogram generator and its vocoder must share (the preprocessor's default: 64 mels)."""
    sr = int(pre.sample_rate)
    hop = pre.get("n_window_stride") or int(pre.window_stride * sr)
    return {"sample rate": sr, "hop": int(hop), "mel channels": int(pre.get("features") or pre.get("nfilt") or 64)}


def check_vocoder(model, vocoder, model_path):
    """The vocoder hears the generator's spectrograms as they are: the same sample rate, hop and
    mel channels (a vocoder of another hop would speak at the wrong speed, of other mels fail deep
    inside its first convolution). A vocoder whose config has no preprocessor is held to the
    sample rate it names."""
    own = frame_settings(model.cfg.preprocessor)
    pre = vocoder.cfg.get("preprocessor")
    theirs = frame_settings(pre) if pre is not None and pre.get("sample_rate") else (
        {"sample rate": int(vocoder.cfg.sample_rate)} if vocoder.cfg.get("sample_rate") else {})
    for key, value in theirs.items():
        if value != own[key]:
            raise ValueError(f"the vocoder's {key} is {value}, the spectrogram generator {model_path}'s {own[key]}: "
                             "they do not belong together")


def synthesize_set(synth, text_path, out_dir):
    """Speak every line of ``text_path`` into ``out_dir``; returns (spoken, failed)."""
    import soundfile as sf

    out_dir = Path(out_dir)
    wav_dir = out_dir / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    sentences = read_table(text_path, allow_empty_value=True)
    spoken, failed, manifest = {}, [], []
    for utt, sentence in sentences.items():
        try:
            audio, sr = synth(sentence)
        except Exception as err:  # one sentence must not lose the others
            failed.append(f"{utt}: synthesis failed: {type(err).__name__}: {err}")
            log(f"warning: skipped {failed[-1]}")
            continue
        wav = (wav_dir / f"{utt}.wav").absolute()
        with atomic_file(wav) as tmp:
            sf.write(tmp, audio, sr, subtype="PCM_16")
        spoken[utt] = (str(wav), sentence)
        manifest.append({"audio_filepath": str(wav), "duration": round(len(audio) / sr, 4), "text": sentence})
    if not spoken:
        raise ValueError(f"{text_path}: no sentence could be synthesized: " + "; ".join(failed[:3]))
    if failed:
        skipped = out_dir / "skipped"
        before = skipped.read_text(encoding="utf-8") if skipped.is_file() else ""
        write_text_atomic(skipped, before + "".join(f + "\n" for f in failed))
    ids = sorted(spoken)
    write_text_atomic(out_dir / "text", "".join(f"{u} {spoken[u][1]}\n" for u in ids))
    write_text_atomic(out_dir / "manifest.json",
                      "".join(json.dumps(m) + "\n" for m in sorted(manifest, key=lambda m: m["audio_filepath"])))
    write_text_atomic(out_dir / "wav.scp", "".join(f"{u} {spoken[u][0]}\n" for u in ids))  # last: the stage's marker
    return len(ids), failed


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.synthesize", description=__doc__.split("\n")[0])
    parser.add_argument("--set", nargs=3, action="append", default=[], metavar=("MODEL", "TEXT", "OUT_DIR"),
                        help="a .nemo spectrogram generator, a Kaldi text of the sentences, the folder to write")
    parser.add_argument("--write_tokens", nargs=2, action="append", default=[], metavar=("MODEL", "FILE"),
                        help="write the characters MODEL's tokenizer can speak (no synthesis)")
    parser.add_argument("--vocoder", help="a NeMo vocoder .nemo (e.g. HiFi-GAN); default: Griffin-Lim")
    parser.add_argument("--griffin_lim_iters", type=int, default=32)
    args = parser.parse_args(argv)
    if not args.set and not args.write_tokens:
        parser.error("nothing to do: give --set MODEL TEXT OUT_DIR or --write_tokens MODEL FILE")
    from pinch.offline import forbid_downloads

    forbid_downloads()
    try:
        for model, out in args.write_tokens:
            n = write_tokens(model, out)
            print(f"pinch.nemo: {n} speakable characters of {model} -> {out}")
        if not args.set:
            return 0
        for model, text, _ in args.set:  # every input checked before a model loads
            if not Path(text).is_file():
                raise FileNotFoundError(f"{text}: no such text file")
        vocoder = None
        if args.vocoder:
            if not Path(args.vocoder).is_file():
                raise FileNotFoundError(f"--vocoder {args.vocoder}: no such file")
            vocoder = restore(args.vocoder, "vocoder")
        for model, text, out in args.set:
            spoken, failed = synthesize_set(Synthesizer(model, vocoder, args.griffin_lim_iters), text, out)
            print(f"pinch.nemo: {spoken} sentences synthesized by {model} -> {out}"
                  + (f" ({len(failed)} failed: {Path(out) / 'skipped'})" if failed else ""))
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.synthesize: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
