"""No step of a pinch job touches the network: checkpoints and data come from disk.

Libraries under the toolkits try anyway: onnxruntime (which NeMo imports) sends telemetry
to Microsoft from a C++ thread, a DNS lookup about 9 s after its import and every few
seconds after; Hugging Face libraries look up the Hub unless told they are offline; every
espnet2 task imports g2p_en, which calls ``nltk.download`` at import when its NLTK data is
missing. `quiet_environment` sets the variables that keep the first two off; importing
``pinch`` calls it, before anything can import onnxruntime (which reads its variable once,
at import: ``onnxruntime.disable_telemetry_events()`` after that stops nothing), and child
processes inherit them. `forbid_downloads` also turns NLTK's downloader into a refusal that
says what is missing. ``python -m pinch.offline MODULE [ARGS]`` runs a toolkit's own entry
point (unmodified) that way; pinch's entry points call it themselves.
"""
import importlib.abc
import importlib.machinery
import os
import runpy
import sys

# onnxruntime 1.31 reads ORT_DISABLE_TELEMETRY; its later sources read ORT_TELEMETRY_DISABLED.
QUIET = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
         "HF_DATASETS_OFFLINE")


def quiet_environment():
    """Telemetry and Hub lookups off, for this process and its children (a value the user set stays)."""
    for name in QUIET:
        os.environ.setdefault(name, "1")


def _refuse_nltk_download(info_or_id=None, *args, **kwargs):
    print(f"pinch: not downloading NLTK data {info_or_id!r} (pinch jobs run offline); "
          "g2p_en tokenization needs it: put it under NLTK_DATA", file=sys.stderr)
    return False


class _RefusingNltk(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds nltk as Python would and refuses its downloader once it has run: importing nltk
    here would cost every pinch process 2 s, most of which never import it (NeMo's do not)."""

    def find_spec(self, name, path=None, target=None):
        if name != "nltk":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.download = _refuse_nltk_download


def forbid_downloads():
    quiet_environment()
    if "nltk" in sys.modules:
        sys.modules["nltk"].download = _refuse_nltk_download
    elif not any(isinstance(f, _RefusingNltk) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefusingNltk())


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: python -m pinch.offline MODULE [ARGS...]  (runs python -m MODULE with downloads refused)")
    forbid_downloads()
    sys.argv = argv
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
