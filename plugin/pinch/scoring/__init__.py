"""Scoring shared by every recipe: sclite WER/CER (jiwer cross-check), MAPSSWE
significance, an append-only results table, and TTS metrics (pinch.scoring.tts_metrics, and the
judges not trained on the corpus, pinch.scoring.judges: not imported here, they load librosa,
pyworld, pysptk, pocketsphinx and DNSMOS, which ASR scoring does not need)."""
from .asr_cer import asr_cer
from .mapsswe import ALPHA, compare, format_compare
from .results import COLUMNS, append_result, read_rows, render_markdown
from .sclite import format_result, jiwer_rates, score

__all__ = ["ALPHA", "COLUMNS", "append_result", "asr_cer", "compare", "format_compare",
           "format_result", "jiwer_rates", "read_rows", "render_markdown", "score"]
