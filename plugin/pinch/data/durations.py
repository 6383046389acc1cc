"""Token durations from a CTC forced alignment, for a FastSpeech-style TTS model to learn from.

Why a CTC aligner: a Tacotron2 teacher's attention gives durations only as sharp as its
attention, and a teacher that is hard to train (a small corpus, few epochs) teaches diffuse
alignments with many tokens given no frame. A CTC model of the same language trained on the
recordings (an ASR model) places each token where the audio says it is, whatever the TTS model.
"""
import numpy as np
import torch

from pinch.data.atomic import write_text_atomic


def durations_from_ctc(log_probs, targets, blank, n_frames):
    """``(durations, score)`` for ``targets`` and the end-of-sentence token, summing to
    ``n_frames`` (the TTS model's frames of the utterance).

    ``log_probs``: the aligner's (T, V) CTC log-posteriors for the utterance; ``targets``: the
    token ids of its text in the aligner's vocabulary (none of them ``blank``). A token lasts from
    its first aligned frame to the next token's first (the blanks after it are its tail), the first
    token from the start (leading silence), the end-of-sentence token from the last token's last
    frame to the end (trailing silence). Aligner frames map onto TTS frames in proportion
    (T frames cover the same audio as ``n_frames``), so no frame shift needs to be known.
    ``score``: the mean posterior of the aligned tokens' frames (near 1: a confident alignment).
    """
    import torchaudio.functional as F

    frames, n = log_probs.shape[0], len(targets)
    if n == 0:
        return [n_frames], 1.0
    repeats = sum(a == b for a, b in zip(targets, targets[1:]))
    if frames < n + repeats:  # CTC needs a frame per token and a blank between repeated ones
        raise ValueError(f"{frames} aligner frames cannot hold {n} tokens ({repeats} repeated)")
    aligned, scores = F.forced_align(log_probs[None].float(), torch.tensor([targets], dtype=torch.int32),
                                     blank=blank)
    spans = F.merge_tokens(aligned[0], scores[0].exp(), blank=blank)
    starts = [span.start for span in spans]
    edges = [0] + starts[1:] + [spans[-1].end, frames]  # n + 2 edges: n tokens and the end of sentence
    ratio = n_frames / frames
    cuts = [min(n_frames, round(e * ratio)) for e in edges]
    cuts[-1] = n_frames
    for i in range(1, len(cuts)):  # rounding never reverses an order the alignment gave
        cuts[i] = max(cuts[i], cuts[i - 1])
    durations = [b - a for a, b in zip(cuts, cuts[1:])]
    score = float(sum(span.score * (span.end - span.start) for span in spans)
                  / sum(span.end - span.start for span in spans))
    return durations, score


def write_durations(out_dir, found, measure):
    """``OUT/durations`` (``utt d1 d2 ...``, what espnet2 reads as ``durations,text_int``) and
    ``OUT/<measure>`` (one number per sentence: how sure its alignment is) from ``found``,
    ``{utt: (durations, value)}``; returns a line that states the set's mean and worst value."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / measure, "".join(f"{u} {v:.5f}\n" for u, (_, v) in found.items()))
    write_text_atomic(out_dir / "durations", "".join(f"{u} {' '.join(map(str, d))}\n" for u, (d, _) in found.items()))
    values = np.array([v for _, v in found.values()])
    return (f"durations of {len(found)} sentences -> {out_dir}/durations; {measure.replace('_', ' ')} "
            f"mean {values.mean():.3f}, min {values.min():.3f}")
