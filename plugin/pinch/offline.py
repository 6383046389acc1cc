"""No step of a pinch job touches the network: checkpoints and data come from disk.

Two libraries under the toolkits try anyway: every espnet2 task imports g2p_en, which
calls ``nltk.download`` at import when its NLTK data is missing, and Hugging Face
libraries look up the Hub unless told they are offline. `forbid_downloads` tells the Hub
libraries so and turns NLTK's downloader into a refusal that says what is missing.
``python -m pinch.offline MODULE [ARGS]`` runs a toolkit's own entry point (unmodified)
that way; pinch's entry points call it themselves.
"""
import os
import runpy
import sys

HUB_OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def _refuse_nltk_download(info_or_id=None, *args, **kwargs):
    print(f"pinch: not downloading NLTK data {info_or_id!r} (pinch jobs run offline); "
          "g2p_en tokenization needs it: put it under NLTK_DATA", file=sys.stderr)
    return False


def forbid_downloads():
    for name in HUB_OFFLINE:
        os.environ.setdefault(name, "1")
    try:
        import nltk
    except ImportError:
        return
    nltk.download = _refuse_nltk_download


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: python -m pinch.offline MODULE [ARGS...]  (runs python -m MODULE with downloads refused)")
    forbid_downloads()
    sys.argv = argv
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
