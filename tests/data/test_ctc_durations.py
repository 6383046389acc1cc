"""Durations from a CTC forced alignment (pinch.data.durations): a token lasts from its first
aligned frame to the next token's, leading silence goes to the first token and trailing silence
to the end of sentence, and the counts fill the TTS frames exactly."""
import pytest
import torch

from pinch.data.durations import durations_from_ctc


def _emissions(frame_labels, vocabulary=5):
    """Log-posteriors that put each frame on the given label (0: blank) with certainty 0.99."""
    probs = torch.full((len(frame_labels), vocabulary), 0.01 / (vocabulary - 1))
    for t, label in enumerate(frame_labels):
        probs[t, label] = 0.99
    return probs.log()


def test_a_token_lasts_until_the_next_one_starts_and_silences_go_to_the_ends():
    # tokens 1, 2, 2, 3 start at frames 3, 8, 10, 15; the last one ends at 16 (20 frames)
    labels = [0, 0, 0, 1, 1, 0, 0, 0, 2, 0, 2, 2, 0, 0, 0, 3, 0, 0, 0, 0]
    durations, score = durations_from_ctc(_emissions(labels), [1, 2, 2, 3], blank=0, n_frames=40)
    # aligner frames [0, 8), [8, 10), [10, 15), [15, 16), then the end of sentence [16, 20): x2
    assert durations == [16, 4, 10, 2, 8]
    assert score == pytest.approx(0.99, abs=1e-3)


@pytest.mark.parametrize("n_frames", [7, 20, 23, 61])
def test_the_counts_fill_the_tts_frames_whatever_the_ratio(n_frames):
    labels = [0, 1, 0, 2, 2, 0, 3, 0, 4, 0, 0, 1, 0]
    durations, _ = durations_from_ctc(_emissions(labels), [1, 2, 3, 4, 1], blank=0, n_frames=n_frames)
    assert len(durations) == 6 and sum(durations) == n_frames and min(durations) >= 0


def test_too_few_frames_for_the_tokens_is_named():
    with pytest.raises(ValueError, match="2 aligner frames cannot hold 2 tokens \\(1 repeated\\)"):
        durations_from_ctc(_emissions([1, 1]), [1, 1], blank=0, n_frames=10)
    assert durations_from_ctc(_emissions([0, 0]), [], blank=0, n_frames=9) == ([9], 1.0)
