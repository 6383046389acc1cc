"""Your data in the NeMo recipe: NeMo manifests of your own, laid out unlike the embedded corpus
(other names, folders of their own, relative and absolute paths, wav and flac, two segments of
one longer recording read through ``offset``), with a .nemo you hold (the recipe's tiny dense
model, copied out of it): transcribed and scored alone (``--skip_train true``), compressed on
them, refused without them, and transcribed as NeMo's ``transcribe_speech.py`` does."""
import json
import subprocess

import numpy as np
import pytest
import soundfile as sf
import yaml

from asr_recipe_runs import DENSE, TINY, recipe_cmd, recipe_env

GAP = 0.3  # seconds of silence around the segments of the long recording
TESTS = ("eval/clips_a.json", "eval_b/manifest.json")  # test sets clips_a (file stem) and eval_b (folder)


def _entries(data, split):
    return [json.loads(line) for line in (data / split / "manifest.json").read_text().splitlines()]


def _copy(entry, dest, fmt):
    """The utterance's audio at ``dest`` in ``fmt`` (the same samples); its duration in seconds."""
    audio, rate = sf.read(entry["audio_filepath"], dtype="int16")
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dest, audio, rate, format=fmt, subtype="PCM_16")
    return len(audio) / rate


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def user_data(nemo_dense, tmp_path_factory):
    """``my/``: train_list.json (12 of the corpus's training utterances, paths relative to it,
    wav and flac), heldout.json (the dev set), eval/clips_a.json (test_clean, paths relative to
    eval/ through ../, wav and flac, one text in capitals) and eval_b/manifest.json (test_other:
    absolute paths, and the last two utterances as segments of one flac recording, relative
    path, offset); and the held model, my_ctc.nemo. Returns (root, held model, {set: [line]})."""
    root = tmp_path_factory.mktemp("nemo_user_data")
    corpus, my = nemo_dense / "data", root / "my"
    lines = {}
    for name, split, count in (("train_list", "train", 12), ("heldout", "dev", None)):
        lines[name] = []
        for i, e in enumerate(_entries(corpus, split)[:count]):
            fmt = ("WAV", "FLAC")[i % 2]
            rel = f"audio/{split}/{i:03d}_{split}.{fmt.lower()}"
            lines[name].append({"audio_filepath": rel, "duration": _copy(e, my / rel, fmt), "text": e["text"]})
        _write(my / f"{name}.json", lines[name])
    lines["clips_a"] = []
    for i, e in enumerate(_entries(corpus, "test_clean")):
        fmt = ("FLAC", "WAV")[i % 2]
        rel = f"audio/test/clip{i}.{fmt.lower()}"
        text = e["text"].title() if i == 0 else e["text"]  # scored as written: capitals too
        lines["clips_a"].append({"audio_filepath": f"../{rel}", "duration": _copy(e, my / rel, fmt), "text": text})
    _write(my / TESTS[0], lines["clips_a"])
    other = _entries(corpus, "test_other")
    lines["eval_b"] = [{"audio_filepath": e["audio_filepath"], "duration": e["duration"], "text": e["text"]}
                       for e in other[:-2]]
    # The last two: one recording, [gap][utterance][gap][utterance][gap], each read by its offset.
    rate = sf.info(other[-1]["audio_filepath"]).samplerate
    gap = np.zeros(int(GAP * rate), np.int16)
    pieces, offset = [gap], GAP
    for e in other[-2:]:
        audio, _ = sf.read(e["audio_filepath"], dtype="int16")
        # NeMo reads int(duration * rate) samples: half a sample more makes that exactly this one
        lines["eval_b"].append({"audio_filepath": "long/session.flac", "offset": offset,
                                "duration": (len(audio) + 0.5) / rate, "text": e["text"]})
        pieces += [audio, gap]
        offset += len(audio) / rate + GAP
    (my / "eval_b" / "long").mkdir(parents=True)
    sf.write(my / "eval_b" / "long" / "session.flac", np.concatenate(pieces), rate, format="FLAC", subtype="PCM_16")
    _write(my / TESTS[1], lines["eval_b"])
    held = root / "models" / "my_ctc.nemo"
    held.parent.mkdir()
    held.write_bytes((nemo_dense / "exp" / DENSE / "model.nemo").read_bytes())
    return root, held, lines


def _recipe(root, held, *options, timeout=900):
    return subprocess.run(recipe_cmd(root, "--results_table", str(root / "results"), "--pretrained", str(held),
                                     *options), cwd=root, env=recipe_env(), capture_output=True, text=True,
                          timeout=timeout)


def _tests(root):
    return " ".join(str(root / "my" / t) for t in TESTS)


@pytest.fixture(scope="module")
def skip_train(user_data):
    """(a) ``--pretrained M --skip_train true --test_manifests "x.json y.json"``."""
    root, held, _ = user_data
    run = root / "skip_train"
    run.mkdir()
    proc = _recipe(run, held, "--skip_train", "true", "--test_manifests", _tests(root))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return run, proc.stderr


def test_skip_train_transcribes_and_scores_the_held_model_on_your_test_sets(user_data, skip_train):
    root, held, lines = user_data
    run, log = skip_train
    for stage in (4, 5, 9):
        assert f"Stage {stage}: skipped: --skip_train true" in log
    models = [p.name for p in (run / "exp").iterdir() if p.is_dir() and p.name != "logs"]
    assert models == ["pretrained_my_ctc"]  # no training dir: no dense control, no compression run
    dense = run / "exp" / "pretrained_my_ctc"
    for dset, n in (("clips_a", 8), ("eval_b", 8)):
        ref = (run / "data" / dset / "text").read_text().splitlines()
        hyp = (dense / f"decode_{dset}" / "hyp.txt").read_text().splitlines()
        assert len(ref) == n and [h.split()[0] for h in hyp] == [r.split()[0] for r in ref]
        assert json.loads((dense / f"decode_{dset}" / "score_wer" / "result.json").read_text())["utterances"] == n
    # ids from the audio file names; the segments with NeMo's -<offset cs>-<duration cs> suffix
    ids = [r.split()[0] for r in (run / "data" / "eval_b" / "text").read_text().splitlines()]
    assert sum(i.startswith("session-") for i in ids) == 2
    first = lines["eval_b"][-2]
    assert f"session-{round(first['offset'] * 100):06d}-{round(first['duration'] * 100):06d}" in ids
    refs = dict(r.split(" ", 1) for r in (run / "data" / "clips_a" / "text").read_text().splitlines())
    assert sorted(refs.values()) == sorted(e["text"] for e in lines["clips_a"])  # as written, capitals kept
    assert any(t != t.lower() for t in refs.values())
    rows = json.loads((run / "results" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["dense"]
    assert set(rows[0]["wer"]) == {"clips_a", "eval_b"} and "corpus=manifests" in rows[0]["notes"]
    assert f"pretrained {held.name}" in rows[0]["notes"]


def test_pretrained_without_data_is_refused_naming_the_options(user_data, tmp_path):
    _, held, _ = user_data
    proc = _recipe(tmp_path, held, timeout=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"--pretrained {held}: name its data" in errors[0], proc.stderr[-2000:]
    for option in ("--train_manifest", "--val_manifest", "--test_manifests", "--skip_train true", "--corpus embedded"):
        assert option in errors[0]
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


def _bad_line(root, name, line):
    """A manifest of a good line (absolute path) and ``line``."""
    good = json.loads((root / "my" / "heldout.json").read_text().splitlines()[0])
    good["audio_filepath"] = str(root / "my" / good["audio_filepath"])
    return str(_write(root / "bad" / f"{name}.json", [good, line]))


@pytest.mark.parametrize("make, message", [
    (lambda r: ["--skip_train", "true", "--test_manifests", _bad_line(r, "nokey", {"audio_filepath": "x.wav", "text": "a"})],
     "--test_manifests {root}/bad/nokey.json:2: missing key 'duration'"),
    (lambda r: ["--skip_train", "true", "--test_manifests",
                _bad_line(r, "gone", {"audio_filepath": "gone.flac", "duration": 1.0, "text": "a"})],
     "--test_manifests {root}/bad/gone.json:2: audio file gone.flac does not exist"),
    (lambda r: ["--skip_train", "true", "--test_manifests", _bad_line(r, "offset", {"audio_filepath": "x.wav",
                "duration": 1.0, "offset": -1, "text": "a"})],
     "--test_manifests {root}/bad/offset.json:2: offset must be a non-negative number of seconds, not -1"),
    (lambda r: ["--train_manifest", _bad_line(r, "notjson", "{oops"), "--val_manifest", str(r / "my" / "heldout.json"),
                "--test_manifests", str(r / "my" / TESTS[0])],
     "--train_manifest {root}/bad/notjson.json:2: not a JSON object"),
    (lambda r: ["--train_manifest", str(r / "my" / "train_list.json"), "--test_manifests", str(r / "my" / TESTS[0])],
     "--val_manifest: missing: training on your data needs --train_manifest, --val_manifest and --test_manifests"),
    (lambda r: ["--skip_train", "true", "--test_manifests", f"{r}/my/{TESTS[0]} {r}/my/eval/../eval/clips_a.json"],
     "both name the test set 'clips_a'"),
    (lambda r: ["--corpus", "embedded", "--skip_train", "true", "--test_manifests", str(r / "my" / TESTS[0])],
     "--corpus embedded with --train_manifest/--val_manifest/--test_manifests: give your manifests or a corpus"),
    (lambda r: ["--skip_train", "yes"], "--skip_train must be true or false, not 'yes'"),
])
def test_bad_data_options_stop_before_any_stage_in_one_line(user_data, tmp_path, make, message):
    root, held, _ = user_data
    proc = _recipe(tmp_path, held, *make(root), timeout=120)
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-2000:]
    assert message.format(root=root) in errors[0], errors[0]
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


def test_skip_train_needs_a_pretrained_model(tmp_path):
    proc = subprocess.run(recipe_cmd(tmp_path, "--skip_train", "true"), env=recipe_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0 and "--skip_train true needs --pretrained MODEL.nemo" in proc.stderr


def test_a_compression_on_your_data_reaches_scoring(user_data):
    """(c) ``--pretrained M --train_manifest ... --val_manifest ... --test_manifests ...``: one
    epoch of the user's 12 training utterances (2 updates of 8), then bake, transcription and
    scores on the user's test sets."""
    root, held, _ = user_data
    run = root / "compress"
    run.mkdir()
    my = root / "my"
    proc = _recipe(run, held, "--stop_stage", "7", "--dense_control", "false", "--target_sparsity", "0.5",
                   "--train_manifest", str(my / "train_list.json"), "--val_manifest", str(my / "heldout.json"),
                   "--test_manifests", _tests(root), "--finetune_args", f"{TINY} trainer.max_epochs=1 model.optim.lr=0.05",
                   "--compress_args", "model.pruning.eta=20")
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = json.loads((run / "results" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["dense", "sspg"]
    dense, sspg = rows
    assert set(sspg["wer"]) == set(dense["wer"]) == set(sspg["significance"]) == {"clips_a", "eval_b"}
    assert sspg["steps"] == 2 and "corpus=manifests" in sspg["notes"]  # the user's 12 utterances, not the corpus's 24
    log = (run / "exp" / "pretrained_my_ctc_sspg0.5" / "train.log").read_text()
    assert f"manifest_filepath: {my / 'train_list.json'}" in log and f"manifest_filepath: {my / 'heldout.json'}" in log
    # The held model's own loaders and optimizer (weight decay, schedule) stay: only these changed.
    changed = yaml.safe_load((run / "exp" / "pretrained_my_ctc_sspg0.5" / "finetune_overrides.yaml").read_text())
    assert {k for k in changed if not k.startswith("model.pruning.")} == {
        "model.train_ds.manifest_filepath", "model.validation_ds.manifest_filepath", "model.optim.lr"}
    assert changed["model.optim.lr"] == {"old": 0.002, "new": 0.05}


def test_transcribe_takes_model_path_dataset_manifest_and_output_filename(user_data, tmp_path):
    """(d) NeMo's transcribe_speech.py interface: each line as written with its pred_text; a
    segment (offset, relative flac path) is read as NeMo reads it: the same text as the
    utterance's own file."""
    root, held, lines = user_data
    manifest = root / "my" / TESTS[1]
    whole = tmp_path / "whole.json"  # the two segmented utterances as their own files
    whole_lines = [{"audio_filepath": str(root / "my" / "eval_b" / "long" / f"u{i}.wav"), "duration": 1.0,
                    "text": e["text"]} for i, e in enumerate(lines["eval_b"][-2:])]
    session = root / "my" / "eval_b" / "long" / "session.flac"
    rate = sf.info(session).samplerate
    for i, e in enumerate(lines["eval_b"][-2:]):
        audio, _ = sf.read(session, dtype="int16", start=int(e["offset"] * rate), frames=int(e["duration"] * rate))
        sf.write(whole_lines[i]["audio_filepath"], audio, rate, subtype="PCM_16")
    _write(whole, whole_lines)
    from pinch.nemo.bin import transcribe

    out = tmp_path / "out" / "pred.json"
    assert transcribe.main([f"model_path={held}", f"dataset_manifest={manifest}", f"output_filename={out}",
                            "batch_size=1"]) == 0
    pred = [json.loads(line) for line in out.read_text().splitlines()]
    assert [{k: v for k, v in p.items() if k != "pred_text"} for p in pred] == lines["eval_b"]
    assert all(isinstance(p["pred_text"], str) for p in pred)
    assert transcribe.main([f"model_path={held}", f"dataset_manifest={whole}", "batch_size=1"]) == 0  # default name
    own = [json.loads(line)["pred_text"] for line in (tmp_path / "whole_my_ctc.json").read_text().splitlines()]
    assert own == [p["pred_text"] for p in pred[-2:]]
    # The ONNX decoders (stage 9) read whole files: a segment comes to them as a file of just it.
    segments = transcribe.utterances(manifest)[-2:]
    for (utt, path), line in zip(segments, whole_lines):
        assert utt.startswith("session-") and np.array_equal(sf.read(path)[0], sf.read(line["audio_filepath"])[0])


@pytest.mark.parametrize("args, message", [
    (["model_path=m.nemo", "dataset_manifest=x.json", "beam_size=4"], "unknown key 'beam_size'"),
    (["model_path=m.nemo"], "dataset_manifest= is required"),
    (["model_path=m.nemo", "dataset_manifest=x.json", "batch_size=0"], "batch_size must be a positive integer, not '0'"),
    (["model_path=m.nemo", "dataset_manifest=/nonexistent/x.json"], "/nonexistent/x.json: missing"),
])
def test_transcribe_arguments_are_checked_in_one_line(args, message, capsys):
    from pinch.nemo.bin import transcribe

    assert transcribe.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("pinch.nemo.bin.transcribe: error: ") and message in err and err.count("\n") == 1, err
