"""Data preparation shared by every recipe: one utterance list, two toolkit formats.

`prepare_embedded` synthesises the default corpus (espeak-ng, flite, festival); `prepare_librispeech`
and `prepare_ljspeech` convert real corpora from disk. Each writes, per split, a
Kaldi-style data dir (ESPnet) and a JSON-lines manifest (NeMo) from the same records.
"""
from .atomic import atomic_output_dir
from .audio import check_audio
from .datadir import write_split
from .embedded import ASR_SPLITS, SIZES, TTS_SPLITS, CorpusSize, prepare_embedded
from .grammar import GENERATOR_VERSION
from .kaldi import read_kaldi_dir, write_kaldi_dir
from .librispeech import LIBRISPEECH_SPLITS, prepare_librispeech
from .ljspeech import prepare_ljspeech
from .manifest import read_manifest, write_manifest
from .text import normalize_text
from .utterance import Utterance
from .validate import check_data_dir

__all__ = [
    "ASR_SPLITS", "GENERATOR_VERSION", "LIBRISPEECH_SPLITS", "SIZES", "TTS_SPLITS",
    "CorpusSize", "Utterance", "atomic_output_dir", "check_audio", "check_data_dir",
    "normalize_text", "prepare_embedded", "prepare_librispeech", "prepare_ljspeech",
    "read_kaldi_dir", "read_manifest", "write_kaldi_dir", "write_manifest", "write_split",
]
