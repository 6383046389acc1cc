"""Data preparation shared by every recipe: one utterance list, two toolkit formats.

`prepare_embedded` synthesises the default corpus (espeak-ng, flite, festival); `prepare_librispeech`
and `prepare_ljspeech` convert real corpora from disk. Each writes, per split, a
Kaldi-style data dir (ESPnet) and a JSON-lines manifest (NeMo) from the same records.
"""
from pinch.lazy import lazy_exports

_EXPORTS = {
    "atomic_output_dir": ".atomic",
    "check_audio": ".audio",
    "write_split": ".datadir",
    "ASR_SPLITS": ".embedded",
    "SIZES": ".embedded",
    "TTS_SPLITS": ".embedded",
    "CorpusSize": ".embedded",
    "prepare_embedded": ".embedded",
    "GENERATOR_VERSION": ".grammar",
    "read_kaldi_dir": ".kaldi",
    "write_kaldi_dir": ".kaldi",
    "LIBRISPEECH_SPLITS": ".librispeech",
    "prepare_librispeech": ".librispeech",
    "prepare_ljspeech": ".ljspeech",
    "read_manifest": ".manifest",
    "write_manifest": ".manifest",
    "normalize_text": ".text",
    "Utterance": ".utterance",
    "check_data_dir": ".validate",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
