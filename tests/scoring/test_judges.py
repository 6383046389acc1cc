"""Judges not trained on the corpus (pinch.scoring.judges) on the tiny embedded corpus's recordings:
pocketsphinx with the corpus's words hears them far better than noise or time-reversed copies,
DNSMOS rates them above noisy copies, and bad audio stops with one line naming it."""
import json
import math

import numpy as np
import pytest
import soundfile as sf

from pinch.data.embedded import prepare_embedded
from pinch.data.kaldi import read_table
from pinch.scoring.__main__ import main as scoring_main
from pinch.scoring.judges import JUDGES, judge, load_16k, load_set, pocketsphinx_cer

SR = 16000


def _copies(data, out, name, change):
    """wav.scp of test_clean's recordings passed through ``change(audio, rng)``."""
    rng = np.random.default_rng(0)
    (out / name).mkdir()
    lines = []
    for utt, path in sorted(read_table(data / "test_clean" / "wav.scp").items()):
        audio, sr = sf.read(path)
        sf.write(out / name / f"{utt}.wav", np.clip(change(audio, rng), -1, 1), sr)
        lines.append(f"{utt} {out / name / f'{utt}.wav'}\n")
    (out / f"{name}.scp").write_text("".join(lines))
    return out / f"{name}.scp"


def _noise(audio, rng):
    return rng.standard_normal(len(audio)) * np.sqrt(np.mean(audio ** 2))


def _dnsmos_hops(seconds):
    """The 9.01 s windows DNSMOS scores of a clip: it is doubled until that long, then hopped by 1 s."""
    while seconds < 9.01:
        seconds *= 2
    return int(math.floor(seconds) - 9.01) + 1


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """pocketsphinx on test_clean's recordings and on time-reversed and white-noise copies; both
    judges on three recordings and on the same with white noise at 5 dB SNR (its pocketsphinx
    errors tested against the recordings'). DNSMOS costs a second a window: the three clips
    with fewest windows keep the test short."""
    out = tmp_path_factory.mktemp("judges")
    data = out / "data"
    prepare_embedded(data, seed=0, size="tiny", progress=False)
    text, lm = data / "test_clean" / "text", [data / "train" / "text", data / "tts" / "train" / "text"]
    scps = {"recordings": data / "test_clean" / "wav.scp",
            "reversed": _copies(data, out, "reversed", lambda a, rng: a[::-1]),
            "noise": _copies(data, out, "noise", _noise)}
    cer = {name: pocketsphinx_cer(scp, text, load_set(scp, text), lm, [text], out / name, {})["cer"]
           for name, scp in scps.items()}
    wavs, texts = read_table(scps["recordings"]), read_table(text)
    few = sorted(wavs, key=lambda u: _dnsmos_hops(sf.info(wavs[u]).duration))[:3]
    (out / "few.text").write_text("".join(f"{u} {texts[u]}\n" for u in few))
    (out / "few.scp").write_text("".join(f"{u} {wavs[u]}\n" for u in few))
    noisy = _copies(data, out, "noisy", lambda a, rng: a + _noise(a, rng) * 10 ** (-5 / 20))
    (out / "noisy_few.scp").write_text("".join(f"{u} {read_table(noisy)[u]}\n" for u in few))
    few_hyp = out / "few" / "judges" / "pocketsphinx" / "hyp"
    results = {"recordings": judge(out / "few.scp", out / "few.text", lm, out / "few" / "judges", [text]),
               "noisy": judge(out / "noisy_few.scp", out / "few.text", lm, out / "noisy" / "judges", [text],
                              {"recordings": few_hyp})}
    return {"out": out, "data": data, "cer": cer, "results": results}


def test_pocketsphinx_hears_the_recordings_far_better_than_noise_or_reversed_speech(judged):
    cer = judged["cer"]
    assert cer["recordings"] < 30, cer
    assert cer["reversed"] > 2 * cer["recordings"] and cer["noise"] > 2 * cer["recordings"], cer
    ps = judged["results"]["recordings"]["pocketsphinx"]
    assert ps["oov_words"] == [] and ps["vocabulary"] > 50 and ps["lm_sentences_skipped"] == 0
    # Restricted to the corpus's words: every word it said is in its dictionary.
    vocab = set((judged["out"] / "recordings" / "vocab.txt").read_text().split())
    hyps = read_table(judged["out"] / "recordings" / "hyp", allow_empty_value=True)
    assert {w for h in hyps.values() for w in h.split()} <= vocab


def test_dnsmos_rates_the_recordings_above_noisy_copies(judged):
    mos = {name: r["dnsmos"] for name, r in judged["results"].items()}
    assert mos["recordings"]["ovrl"] > mos["noisy"]["ovrl"] + 0.3, mos
    assert mos["recordings"]["bak"] > mos["noisy"]["bak"], mos
    per_utt = mos["recordings"]["per_utterance"]
    assert len(per_utt) == 3 and all(1 <= s["ovrl"] <= 5 for s in per_utt.values())
    assert mos["recordings"]["ovrl"] == pytest.approx(np.mean([s["ovrl"] for s in per_utt.values()]))


def test_json_fields_and_the_mapsswe_test_against_a_reference(judged):
    stored = json.loads((judged["out"] / "noisy" / "judges" / JUDGES).read_text())
    assert stored == judged["results"]["noisy"] and stored["utterances"] == 3
    assert {"cer", "wer", "normalized", "vocabulary", "oov_words", "mapsswe"} <= set(stored["pocketsphinx"])
    assert set(stored["dnsmos"]) == {"sig", "bak", "ovrl", "p808", "per_utterance"}
    test = stored["pocketsphinx"]["mapsswe"]["recordings"]
    assert 0 <= test["p_value"] <= 1 and isinstance(test["lossless"], bool)
    assert (judged["out"] / "noisy" / "judges" / "pocketsphinx" / "mapsswe_vs_recordings" / "compare.json").is_file()

    def numbers(x):
        return [v for y in x.values() for v in numbers(y)] if isinstance(x, dict) else \
            [x] if isinstance(x, float) else []

    assert all(math.isfinite(v) for r in judged["results"].values() for v in numbers(r))


def test_missing_wav_and_low_sample_rate_stop_with_one_line(judged, tmp_path, capsys):
    data = judged["data"]
    text = data / "test_clean" / "text"
    scp = read_table(data / "test_clean" / "wav.scp")
    first = sorted(scp)[0]
    audio, _ = sf.read(scp[first])
    sf.write(tmp_path / "8k.wav", audio[::2], 8000)
    sf.write(tmp_path / "22k.wav", audio, 22050)  # played slower: resampled, not refused
    assert len(load_16k(str(tmp_path / "22k.wav"), "x")) == pytest.approx(len(audio) * SR / 22050, abs=2)
    for wav, message in ((tmp_path / "none.wav", f"{first}: audio file {tmp_path / 'none.wav'} does not exist"),
                         (tmp_path / "8k.wav", "is 8000 Hz; the judges need at least 16000 Hz")):
        bad = tmp_path / "bad.scp"
        bad.write_text("".join(f"{u} {wav if u == first else p}\n" for u, p in sorted(scp.items())))
        assert scoring_main(["judge", "--wav-scp", str(bad), "--text", str(text), "--lm-text", str(text),
                             "--out", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out" / JUDGES).exists()
