"""MCD and log-F0 RMSE on espeak-ng speech, and the ASR-CER hook."""
import numpy as np
import pytest
import soundfile as sf

from pinch.data.synth.espeak import PITCH, PITCH_SPAN, synthesize
from pinch.scoring.asr_cer import asr_cer
from pinch.scoring.tts_metrics import compare_audio, score_tts

SR = 16000


@pytest.fixture(scope="module")
def speech():
    # keyed by espeak-ng's -p
    return {p: synthesize("turn on the kitchen light", "en-us+m3", 1.0, (p - PITCH) / PITCH_SPAN, SR)
            for p in (30, 50, 80)}


def test_mcd_of_a_file_with_itself_is_zero(speech):
    m = compare_audio(speech[50], speech[50], SR)
    assert m["mcd"] == 0.0 and m["log_f0_rmse"] == 0.0 and m["voiced_frames"] > 50


def test_mcd_grows_with_distortion(speech):
    rng = np.random.default_rng(0)
    x = speech[50]
    noise = rng.standard_normal(len(x)) * np.sqrt(np.mean(x ** 2))
    mild = compare_audio(x, x + noise * 10 ** (-30 / 20), SR)["mcd"]
    strong = compare_audio(x, x + noise * 10 ** (-5 / 20), SR)["mcd"]
    assert 0 < mild < strong


def test_log_f0_rmse_tracks_pitch_difference(speech):
    near = compare_audio(speech[50], speech[30], SR)["log_f0_rmse"]
    far = compare_audio(speech[50], speech[80], SR)["log_f0_rmse"]
    assert 0.05 < near < far


def _scp(path, entries):
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(entries.items())))
    return path


def test_score_tts_over_wav_scp(tmp_path, speech):
    for p, x in speech.items():
        sf.write(tmp_path / f"{p}.wav", x, SR)
    ref = _scp(tmp_path / "ref.scp", {"u1": tmp_path / "50.wav", "u2": tmp_path / "80.wav"})
    same = score_tts(ref, ref, tmp_path / "out")
    assert same["mcd"] == 0.0 and (tmp_path / "out" / "tts_metrics.json").is_file()
    syn = _scp(tmp_path / "syn.scp", {"u1": tmp_path / "30.wav", "u2": tmp_path / "80.wav"})
    r = score_tts(ref, syn)
    assert r["per_utterance"]["u2"]["mcd"] == 0.0 and r["per_utterance"]["u1"]["mcd"] > 0
    assert r["mcd"] == pytest.approx(r["per_utterance"]["u1"]["mcd"] / 2)
    with pytest.raises(ValueError, match=r"syn_missing.scp: lacks 1 utterance\(s\) of .*ref.scp, e.g. 'u2'"):
        score_tts(ref, _scp(tmp_path / "syn_missing.scp", {"u1": tmp_path / "30.wav"}))
    sf.write(tmp_path / "22k.wav", speech[50][:1000], 22050)
    with pytest.raises(ValueError, match="u1: synthesized audio is 22050 Hz"):
        score_tts(ref, _scp(tmp_path / "s.scp", {"u1": tmp_path / "22k.wav",
                                                  "u2": tmp_path / "80.wav"}))


def test_asr_cer_hook(tmp_path):
    refs = {"tts-1": "turn on the light", "tts-2": "call alice"}
    (tmp_path / "text").write_text("".join(f"{k} {v}\n" for k, v in refs.items()))
    scp = _scp(tmp_path / "wav.scp", {k: f"/syn/{k}.wav" for k in refs})
    seen = []

    def perfect(paths):
        seen.extend(paths)
        return [refs[p.split("/")[-1][:-4]] for p in paths]

    assert asr_cer(scp, tmp_path / "text", perfect, tmp_path / "a")["cer"] == 0.0
    assert seen == ["/syn/tts-1.wav", "/syn/tts-2.wav"]
    r = asr_cer(scp, tmp_path / "text", lambda paths: ["turn on the night", "call alice"],
                tmp_path / "b")
    assert r["cer"] == pytest.approx(100 * 1 / (17 + 10)) and r["wer"] == pytest.approx(100 / 6)
    with pytest.raises(ValueError, match="transcribe returned 1 transcripts for 2 files"):
        asr_cer(scp, tmp_path / "text", lambda paths: ["x"], tmp_path / "c")


def test_cli_tts(tmp_path, speech, capsys):
    from pinch.scoring.__main__ import main as scoring_main
    sf.write(tmp_path / "a.wav", speech[50], SR)
    scp = _scp(tmp_path / "wav.scp", {"u1": tmp_path / "a.wav"})
    assert scoring_main(["tts", "--ref-scp", str(scp), "--syn-scp", str(scp),
                         "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("MCD 0.000 dB  log-F0 RMSE 0.0000")
