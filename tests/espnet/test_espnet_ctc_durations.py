"""`python -m pinch.espnet.bin.ctc_durations`: an espnet2 character CTC model aligns a Kaldi dir's
sentences for a FastSpeech2, one count per student token and one for the end of sentence, summing
to the student's reduced frames; a student or aligner that cannot fit is refused before anything runs."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from espnet_tiny import tiny_char_aligner

from pinch.espnet.bin.ctc_durations import main

STUDENT = Path(__file__).resolve().parents[2] / "recipes" / "espnet" / "tts1" / "conf" / "train_fastspeech2.yaml"
ALIGNER_TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
TEXTS = {"u1": "ab c", "u2": "cab ba"}


def _aligner(tmp_path):
    token_list = tmp_path / "asr_tokens.txt"
    token_list.write_text("\n".join(ALIGNER_TOKENS) + "\n")
    return tiny_char_aligner(tmp_path / "aligner", token_list)


def _data(tmp_path):
    data = tmp_path / "train"
    data.mkdir()
    rng = np.random.default_rng(0)
    wavs = []
    for i, utt in enumerate(TEXTS):
        path = tmp_path / f"{utt}.wav"
        sf.write(path, 0.1 * rng.standard_normal(16000 + 3000 * i).astype("float32"), 16000)
        wavs.append(f"{utt} {path}\n")
    (data / "wav.scp").write_text("".join(wavs))
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in TEXTS.items()))
    return data


def _student_tokens(tmp_path, chars="abc"):
    path = tmp_path / "tts_tokens.txt"
    path.write_text("\n".join(["<blank>", "<unk>", *chars, "<space>", "<sos/eos>"]) + "\n")
    return path


def _run(tmp_path, aligner, student=STUDENT, tokens=None):
    return main(["--asr_train_config", str(aligner / "config.yaml"), "--asr_model_file", str(aligner / "model.pth"),
                 "--student_config", str(student), "--token_list", str(tokens or _student_tokens(tmp_path)),
                 "--set", str(_data(tmp_path)), str(tmp_path / "out")])


def test_durations_count_every_student_token_and_fill_its_frames(tmp_path):
    _run(tmp_path, _aligner(tmp_path))
    config = yaml.safe_load(STUDENT.read_text())
    hop, r = config["feats_extract_conf"]["hop_length"], config["tts_conf"]["reduction_factor"]
    assert r == 2  # the recipe's FastSpeech2: its durations count pairs of frames
    lines = dict(line.split(maxsplit=1) for line in (tmp_path / "out" / "durations").read_text().splitlines())
    assert sorted(lines) == sorted(TEXTS)
    for utt, text in TEXTS.items():
        durations = [int(d) for d in lines[utt].split()]
        samples = sf.info(str(tmp_path / f"{utt}.wav")).frames
        assert len(durations) == len(text) + 1  # a character (spaces too) each, and the end of sentence
        # espnet2's centred STFT frames, reduced as FastSpeech2's decoder steps are
        assert sum(durations) == (samples // hop + 1) // r and min(durations) >= 0
    scores = [float(line.split()[1]) for line in (tmp_path / "out" / "align_scores").read_text().splitlines()]
    assert len(scores) == 2 and all(0 < s <= 1 for s in scores)


@pytest.mark.parametrize("change, problem", [
    ({"token_type": "bpe"}, "token_type bpe, not char"),
    ({"tts": "tacotron2"}, "tts tacotron2 does not train on durations"),
    ({"pitch_extract_conf": {"reduction_factor": 1}}, "pitch_extract_conf.reduction_factor is 1, the model's "
                                                      "reduction factor 2"),
])
def test_a_student_that_cannot_use_them_is_refused(tmp_path, change, problem):
    student = tmp_path / "student.yaml"
    config = yaml.safe_load(STUDENT.read_text())
    for key, value in change.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    student.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit, match=problem):
        _run(tmp_path, _aligner(tmp_path), student=student)
    assert not (tmp_path / "out").exists()


def test_an_aligner_without_the_students_characters_is_refused(tmp_path):
    with pytest.raises(SystemExit, match=r"lacks 1 of the student's characters \(z\)"):
        _run(tmp_path, _aligner(tmp_path), tokens=_student_tokens(tmp_path, "abcz"))
