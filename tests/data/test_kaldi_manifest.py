"""python -m pinch.data.manifest from-kaldi: a formatted Kaldi dir's NeMo manifest, its ids kept."""
import json

import numpy as np
import pytest
import soundfile as sf

from pinch.data.manifest import kaldi_manifest, main, manifest_entries


def _dir(tmp_path):
    d = tmp_path / "test"
    d.mkdir()
    for utt, seconds in (("b-2", 0.5), ("a-1", 0.25)):
        sf.write(tmp_path / f"{utt}.flac", np.zeros(int(16000 * seconds)), 16000)
    (d / "wav.scp").write_text(f"b-2 {tmp_path / 'b-2.flac'}\na-1 {tmp_path / 'a-1.flac'}\n")
    (d / "text").write_text("a-1 hello there\nb-2 GOOD day\n")
    return d


def test_the_manifest_keeps_the_dirs_ids_texts_and_durations(tmp_path):
    d = _dir(tmp_path)
    assert main(["from-kaldi", str(d)]) == 0
    lines = [json.loads(line) for line in (d / "manifest.json").read_text().splitlines()]
    assert [(e["text"], e["duration"]) for e in lines] == [("hello there", 0.25), ("GOOD day", 0.5)]
    # A NeMo transcription of it writes hypotheses under the dir's own ids.
    assert [e.utt_id for e in manifest_entries(d / "manifest.json")] == ["a-1", "b-2"]


def test_segments_commands_and_unreadable_audio_are_refused_by_name(tmp_path):
    d = _dir(tmp_path)
    (d / "segments").write_text("a-1 rec 0 1\n")
    with pytest.raises(ValueError, match="has a segments file; format the dir first"):
        kaldi_manifest(d)
    (d / "segments").unlink()
    (d / "wav.scp").write_text("a-1 sox x.wav -t wav - |\n")
    with pytest.raises(ValueError, match="a-1 is a command; format the dir first"):
        kaldi_manifest(d)
    (d / "wav.scp").write_text(f"a-1 {tmp_path / 'none.flac'}\n")
    with pytest.raises(ValueError, match="a-1: .*none.flac cannot be read"):
        kaldi_manifest(d)
    assert not (d / "manifest.json").exists()
