"""Take a user's pretrained .nemo (ASR, or a FastPitch for TTS) as a recipe's dense model (``run.sh --pretrained``).

Checks that the file is a NeMo model of the recipe's task that pinch can compress (a class
``pinch.nemo`` derives, no gates left in it), links it as ``<dense_dir>/model.nemo`` and
writes the parameter counts the results table reads. The network, preprocessor and tokenizer
all come from the .nemo: the recipe's data are transcribed (ASR) or spoken (TTS) with the
model's own tokenizer. A TTS model's mel settings (its preprocessor's) are written to
``<dense_dir>/audio_overrides``, Hydra overrides one a line: the recipe computes its data's
pitch and trains on spectrograms exactly as the model was trained, whatever the recipe's
config says.

    python -m pinch.nemo.bin.pretrained --nemo /models/parakeet.nemo --dense_dir exp/pretrained_parakeet
    python -m pinch.nemo.bin.pretrained --task tts --nemo /models/fastpitch.nemo --dense_dir exp/pretrained_fastpitch
"""
import argparse
import os
import sys
from pathlib import Path

AUDIO_OVERRIDES = "audio_overrides"
# The recipe config's mel keys (model.*) and the preprocessor's (AudioToMelSpectrogramPreprocessor).
MEL_KEYS = {"sample_rate": ("sample_rate",), "n_mel_channels": ("features", "nfilt"),
            "n_window_size": ("n_window_size",), "n_window_stride": ("n_window_stride",), "n_fft": ("n_fft",),
            "lowfreq": ("lowfreq",), "highfreq": ("highfreq",), "window": ("window",)}


def check_task(cfg, task, nemo):
    """The model is the recipe's task: ASR writes text with a tokenizer or labels; TTS reads it
    with a text tokenizer."""
    if task == "tts":
        if cfg.get("text_tokenizer") is None or cfg.get("preprocessor") is None:
            raise ValueError(f"{nemo}: its config has no text_tokenizer / preprocessor: not a TTS model "
                             "(a FastPitch .nemo) the TTS recipe can fine-tune")
    elif cfg.get("tokenizer") is None and not cfg.get("labels"):
        raise ValueError(f"{nemo}: its config has neither a tokenizer nor labels: not an ASR model pinch can "
                         "score")


def mel_overrides(cfg):
    """Hydra overrides of the recipe's mel keys with the model's own, from its preprocessor (a
    window given in seconds counted in samples, as the preprocessor does)."""
    pre, rate = cfg.preprocessor, cfg.preprocessor.get("sample_rate")
    out = {}
    for key, sources in MEL_KEYS.items():
        value = next((pre.get(s) for s in sources if pre.get(s) is not None), None)
        if value is None and key in ("n_window_size", "n_window_stride"):
            seconds = pre.get(key.replace("n_", "", 1))  # window_size, window_stride
            value = None if not seconds or rate is None else int(round(seconds * rate))
        if value is not None:
            out[key] = value
    if "sample_rate" not in out:
        raise ValueError("its preprocessor names no sample_rate: the recipe cannot make its spectrograms")
    return [f"model.{k}={v}" for k, v in out.items()]


def place(nemo, dense_dir, task="asr"):
    from pinch.nemo import nemo_config, pinch_class_for
    from pinch.nemo.archive import write_counts
    from pinch.nemo.mixin import PRUNING_KEY

    nemo = Path(nemo).resolve()
    cfg = nemo_config(nemo)
    if cfg.get(PRUNING_KEY) is not None:
        raise ValueError(f"{nemo}: a compressed model that still has its gates; bake it first "
                         "(python -m pinch.nemo.bin.bake)")
    check_task(cfg, task, nemo)
    cls = pinch_class_for(cfg.get("target")).nemo_class
    audio = None
    if task == "tts":
        try:
            audio = mel_overrides(cfg)
        except ValueError as err:
            raise ValueError(f"{nemo}: {err}") from None
    model = cls.restore_from(str(nemo), map_location="cpu")
    dense_dir = Path(dense_dir)
    dense_dir.mkdir(parents=True, exist_ok=True)
    if audio is not None:
        (dense_dir / AUDIO_OVERRIDES).write_text("".join(f"{line}\n" for line in audio))
    link = dense_dir / "model.nemo"
    tmp = dense_dir / ".model.nemo.link"
    tmp.unlink(missing_ok=True)
    os.symlink(nemo, tmp)
    write_counts(model, link)
    os.replace(tmp, link)  # the link last: the stage counts as done only when all exist
    return link, cls


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.nemo.bin.pretrained", description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("asr", "tts"), default="asr", help="the recipe's task")
    parser.add_argument("--nemo", required=True, help="the pretrained .nemo file")
    parser.add_argument("--dense_dir", required=True, help="the recipe's dense model directory")
    args = parser.parse_args(argv)
    try:
        link, cls = place(args.nemo, args.dense_dir, args.task)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.nemo.bin.pretrained: error: {err}", file=sys.stderr)
        return 1
    print(f"pinch.nemo: {link} -> {args.nemo} ({cls.__name__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
