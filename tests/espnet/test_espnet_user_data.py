"""The ESPnet recipe on your own data (issue 31, "Your data"): a model you hold (a tiny model
built here and packed as espnet_model_zoo packs one) and Kaldi-style data dirs that are not
laid out like the embedded corpus: their own set names (my_train, my_dev, eval1, eval2), one
set cut by a ``segments`` file, wav and flac audio mixed, a wav.scp command, transcripts in
upper case with apostrophes (used as written), lines out of order and tab-separated.
``--skip_train true`` decodes and scores the held model with nothing trained; ``--pretrained``
alone is refused, as is every bad data dir, in one line; a short compression run on the dirs
reaches scoring."""
import json
import re
import shutil

import numpy as np
import pytest
import soundfile
import torch
import yaml
from recipe_runs import RECIPE, TINY_MODEL, run_recipe
from test_espnet_sweep import pack_model_zoo_zip

RATE = 16000
# The held model is CTC/attention, decoded as such (joint beam search), with asr.sh's
# --inference_args narrowing the shipped config's beam of 10 to 2 (the option under test; the
# compression test took 160 s of the suite with it, 162 s with beam 10: the decoding is not where
# its time goes); decode dirs named after both, as asr.sh names them.
DECODE = ("--inference_config", "conf/decode_asr_ctc_attention.yaml", "--inference_args", "--beam_size 2")
TAG = "decode_asr_ctc_attention_beam_size2_asr_model_valid.loss.ave"
LATEST_TAG = "decode_asr_ctc_attention_beam_size2_asr_model_latest"
SENTENCES = [
    "THE CAT SAT ON THE MAT", "IT'S A SUNNY DAY", "OPEN THE DOOR PLEASE", "WE WALKED TO THE RIVER",
    "SHE READ THE BOOK TWICE", "TURN LEFT AT THE LIGHTS", "HE DIDN'T CALL BACK", "THE TRAIN IS LATE AGAIN",
    "BRING ME SOME WATER", "THE KIDS PLAYED OUTSIDE", "WHAT A LOVELY VIEW", "I'LL SEE YOU TOMORROW",
]
# eval1: two recordings cut by segments: (utterance, recording, start, end) in seconds.
SEGMENTS = [("spkc-rec1-a", "rec1", 0.0, 1.5), ("spkc-rec1-b", "rec1", 1.5, 3.2), ("spkc-rec1-c", "rec1", 3.2, -1),
            ("spkd-rec2-a", "rec2", 0.3, 1.9), ("spkd-rec2-b", "rec2", 2.0, 3.6)]
DURATIONS = {"rec1": 4.5, "rec2": 4.0}


def noise(seconds, seed):
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype("float32")


def write_dir(path, wavs, texts, utt2spk, segments=None, tab_line=None):
    """A Kaldi dir written as a user might: lines in reverse order, one line tab-separated."""
    path.mkdir(parents=True)
    for name, table in (("wav.scp", wavs), ("text", texts), ("utt2spk", utt2spk), ("segments", segments)):
        if table is None:
            continue
        lines = [f"{k} {v}" for k, v in sorted(table.items(), reverse=True)]
        if name == "text" and tab_line is not None:
            lines[tab_line] = lines[tab_line].replace(" ", "\t", 1)
        (path / name).write_text("\n".join(lines) + "\n")


def make_user_data(root):
    """data/{my_train,my_dev,eval1,eval2} and their audio under audio/ (noise: the model is untrained)."""
    audio, data = root / "audio", root / "data"
    audio.mkdir()
    sets, texts = {}, {}
    i = 0
    for dset, n, spk in (("my_train", 8, "spka"), ("my_dev", 4, "spkb"), ("eval2", 3, "spke")):
        wavs, text = {}, {}
        for j in range(n):
            utt = f"{spk}-{dset}-{j:02d}"
            ext = ("wav", "flac")[j % 2]  # wav and flac mixed
            soundfile.write(audio / f"{utt}.{ext}", noise(1.6 + 0.1 * j, i), RATE)
            wavs[utt] = str(audio / f"{utt}.{ext}")
            text[utt] = SENTENCES[i % len(SENTENCES)]
            i += 1
        sets[dset] = wavs, text
        texts.update(text)
    wavs, text = sets["eval2"]
    first = sorted(wavs)[0]
    wavs[first] = f"cat {wavs[first]} |"  # a Kaldi command: its output is the audio
    for dset, (wavs, text) in sets.items():
        write_dir(data / dset, wavs, text, {u: u.split("-")[0] for u in wavs}, tab_line=0)
    recordings = {}
    for k, (rec, seconds) in enumerate(DURATIONS.items()):
        ext = ("wav", "flac")[k]
        soundfile.write(audio / f"{rec}.{ext}", noise(seconds, 100 + k), RATE)
        recordings[rec] = str(audio / f"{rec}.{ext}")
    text = {u: SENTENCES[(5 + k) % len(SENTENCES)] for k, (u, *_) in enumerate(SEGMENTS)}
    write_dir(data / "eval1", recordings, text, {u: u.split("-")[0] for u, *_ in SEGMENTS},
              segments={u: f"{r} {s:.2f} {e:.2f}" if e != -1 else f"{r} {s:.2f} -1" for u, r, s, e in SEGMENTS})
    texts.update(text)
    return texts


def make_pretrained(root, texts):
    """A tiny CTC/attention model as egs2 trains them (the recipe's config with the recipe tests'
    tiny encoder and an attention decoder, BPE on these transcripts as written), untrained, packed
    as espnet_model_zoo does."""
    import sentencepiece as spm
    import torch

    from pinch.offline import forbid_downloads

    forbid_downloads()  # espnet2's tasks import g2p_en, which would try NLTK's downloader
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    model_dir = root / "held" / "asr_mine"
    model_dir.mkdir(parents=True)
    (root / "held" / "text.txt").write_text("\n".join(texts.values()) + "\n")
    spm.SentencePieceTrainer.train(input=str(root / "held" / "text.txt"), vocab_size=30, model_type="unigram",
                                   model_prefix=str(model_dir / "bpe"), character_coverage=1.0,
                                   hard_vocab_limit=False, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=str(model_dir / "bpe.model"))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    (model_dir / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", *pieces, "<sos/eos>"]) + "\n")
    args = ASRTask.get_parser().parse_args([
        "--config", str(RECIPE / "conf" / "train_asr_conformer_ctc.yaml"), "--token_type", "bpe",
        "--token_list", str(model_dir / "tokens.txt"), "--bpemodel", str(model_dir / "bpe.model"),
        "--normalize", "utterance_mvn", *TINY_MODEL.split(), "--decoder", "transformer",
        "--decoder_conf", "num_blocks=1", "--decoder_conf", "linear_units=32", "--decoder_conf", "attention_heads=2",
        "--model_conf", "ctc_weight=0.3"])
    torch.manual_seed(0)
    model = ASRTask.build_model(args)  # args.token_list: the list itself, as espnet2 saves it
    with open(model_dir / "config.yaml", "w") as f:
        yaml_no_alias_safe_dump(vars(args), f)
    torch.save(model.state_dict(), model_dir / "valid.loss.ave.pth")
    return pack_model_zoo_zip(model_dir, root / "held" / "asr_mine.zip")


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    texts = make_user_data(root)
    return {"root": root, "texts": texts, "pack": make_pretrained(root, texts)}


def a_root(user, tmp_path):
    """A recipe root of its own with a copy of the user's data dirs."""
    root = tmp_path / "run"
    (root / "data").mkdir(parents=True)
    for dset in ("my_train", "my_dev", "eval1", "eval2"):
        shutil.copytree(user["root"] / "data" / dset, root / "data" / dset)
    return root


def kaldi(path):
    return dict(line.split(maxsplit=1) if " " in line else (line, "") for line in path.read_text().splitlines())


@pytest.fixture(scope="module")
def held(user, tmp_path_factory):
    """The held model decoded and scored on eval1 and eval2 with nothing trained; what the run
    left, taken before the compression test goes on in the same root (as a user would)."""
    root = a_root(user, tmp_path_factory.mktemp("held"))
    proc = run_recipe(root, "--pretrained", str(user["pack"]), "--skip_train", "true", "--test_sets", "eval1 eval2",
                      *DECODE)
    dense = root / "exp" / "pretrained_asr_mine"
    return {"root": root, "stderr": proc.stderr, "dense": dense, "exp": sorted(p.name for p in (root / "exp").iterdir()),
            "dump": sorted(p.name for p in (root / "dump" / "raw").iterdir()),
            "results_md": (dense / "RESULTS.md").read_text(),
            "rows": json.loads((root / "results" / "results.json").read_text())}


def test_skip_train_decodes_and_scores_the_held_model_on_your_sets(user, held):
    root, err, dense = held["root"], held["stderr"], held["dense"]
    assert f"Stage 1: {root}/data/eval1: 5 utterances, 2 recordings cut by segments, 16000 Hz, ok" in err
    assert f"Stage 1: {root}/data/eval2: 3 utterances, 16000 Hz, 1 wav.scp entries are commands" in err
    for stage in (4, 10, 11, 14, 15):
        assert f"Stage {stage}: skipped: --skip_train true" in err
    # Nothing trained: no statistics, no control, no compression run; no training set formatted.
    assert held["exp"] == ["RESULTS.md", "logs", "pretrained_asr_mine"] and held["dump"] == ["eval1", "eval2"]
    assert not (dense / "train.log").exists()
    # The held pack unpacked as the recipe's dense model: its config names its own copies of the
    # token list and BPE model, and its weights are the pack's.
    config = yaml.safe_load((dense / "config.yaml").read_text())
    assert config["token_list"] == str(dense / "tokens.txt") and config["bpemodel"] == str(dense / "bpe.model")
    packed = torch.load(user["root"] / "held" / "asr_mine" / "valid.loss.ave.pth")
    assert all(torch.equal(w, packed[k]) for k, w in torch.load(dense / "valid.loss.ave.pth").items())
    # Segments cut into one flac file per utterance (asr.sh's format stage), of the segment's length.
    eval1 = root / "dump" / "raw" / "eval1"
    wavs, lengths = kaldi(eval1 / "wav.scp"), kaldi(eval1 / "utt2num_samples")
    assert list(wavs) == sorted(u for u, *_ in SEGMENTS)
    for utt, rec, start, end in SEGMENTS:
        end = DURATIONS[rec] if end == -1 else end
        assert wavs[utt] == str(eval1 / "data" / f"{utt}.flac")
        assert int(lengths[utt]) == int(end * RATE) - int(start * RATE) == soundfile.info(wavs[utt]).frames
    assert not (eval1 / "segments").exists()
    # eval2: files stay where they are (wav and flac), the command's output is written as a file.
    eval2 = root / "dump" / "raw" / "eval2"
    wavs2 = kaldi(eval2 / "wav.scp")
    command = sorted(wavs2)[0]
    assert wavs2[command] == str(eval2 / "data" / f"{command}.flac")
    assert [wavs2[u] for u in sorted(wavs2)[1:]] == [str(user["root"] / "audio" / f"{u}.{ext}")
                                                    for u, ext in zip(sorted(wavs2)[1:], ("flac", "wav"))]
    # The transcripts as written (upper case, apostrophes) in the dump and the references scored.
    for dset, n in (("eval1", 5), ("eval2", 3)):
        text = kaldi(root / "dump" / "raw" / dset / "text")
        assert len(text) == n and text == {u: user["texts"][u] for u in text}
        assert json.loads((dense / TAG / dset / "score_wer" / "result.json").read_text())["utterances"] == n
        ref = (dense / TAG / dset / "score_wer" / "ref.word.trn").read_text()
        assert all(t in ref for t in text.values())
    assert "--beam_size 2" in (dense / TAG / "logdir" / "asr_inference.1.log").read_text()  # eval1 and eval2 in one job
    assert f"|{TAG}/eval1|5|22|" in held["results_md"] and f"|{TAG}/eval2|3|14|" in held["results_md"]
    rows = held["rows"]
    assert [r["method"] for r in rows] == ["dense"] and set(rows[0]["wer"]) == {"eval1", "eval2"}
    assert "corpus=own" in rows[0]["notes"] and "nothing trained (--skip_train true)" in rows[0]["notes"]
    # the held model by its file name: a machine's path does not belong in a results table
    assert f"pretrained {user['pack'].name}" in rows[0]["notes"] and str(user["pack"].parent) not in rows[0]["notes"]


def refused(root, *options):
    proc = run_recipe(root, *options, "--stop_stage", "3", check=False)
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_pretrained_without_data_is_refused_naming_the_options(user, tmp_path):
    line = refused(tmp_path, "--pretrained", str(user["pack"]))
    assert f"--pretrained {user['pack']}: name the data to fine-tune and test it on: --corpus embedded" in line
    assert "--train_set, --valid_set and --test_sets (your Kaldi dirs under" in line
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


def test_skip_train_without_a_model_to_decode_is_refused(user, tmp_path):
    root = a_root(user, tmp_path)
    line = refused(root, "--corpus", "none", "--skip_train", "true", "--test_sets", "eval1")
    assert "--skip_train true: no dense model " in line and "give --pretrained MODEL, or train one first" in line


def drop_first_line(path):
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))


def replace_in(path, old, new):
    path.write_text(re.sub(old, new, path.read_text()))


@pytest.mark.parametrize("break_it, options, message", [
    (None, ["--test_sets", "eval3"], "--test_sets eval3: no data dir {root}/data/eval3"),
    (lambda d: (d / "eval2" / "utt2spk").unlink(), [], "--test_sets eval2: {root}/data/eval2 has no utt2spk"),
    (None, ["--valid_set", ""], "--corpus none (your own data dirs): name the validation set with --valid_set"),
    (None, ["--corpus", "embedded"], "--train_set: embedded has no set 'my_train'"),
    (lambda d: drop_first_line(d / "my_dev" / "text"), [],
     "--valid_set my_dev: {root}/data/my_dev/text: lacks 1 utterance(s) of {root}/data/my_dev/wav.scp"),
    (lambda d: (d / "eval1" / "segments").write_text("spkc-rec1-a rec9 0.0 1.0\n"), [],
     "--test_sets eval1: {root}/data/eval1/segments: 'spkc-rec1-a': recording 'rec9' is not in"),
    (lambda d: replace_in(d / "eval2" / "text", "THE CAT", "THE (CAT)"), [],
     "--test_sets eval2: {root}/data/eval2/text: 'spke-eval2-00' contains '(' or ')'"),
    (lambda d: replace_in(d / "my_train" / "wav.scp", r"\S*/audio/", "/nowhere/"), [],
     "--train_set my_train: {root}/data/my_train/wav.scp: 'spka-my_train-00': audio file /nowhere/spka-my_train-00.wav does not exist"),
], ids=["no dir", "no utt2spk", "no valid set", "not the corpus's set", "ids differ", "segments",
        "parentheses", "no audio file"])
def test_a_bad_data_dir_is_refused_in_one_line_naming_it(user, tmp_path, break_it, options, message):
    root = a_root(user, tmp_path)
    if break_it:
        break_it(root / "data")
    line = refused(root, "--pretrained", str(user["pack"]), "--train_set", "my_train", "--valid_set", "my_dev",
                   "--test_sets", "eval1 eval2", *options)
    assert message.format(root=root) in line, line
    assert not (root / "dump").exists()


def test_a_compression_run_on_your_sets_reaches_scoring(user, held):
    """In the root of the skip_train run: the held model's place and its decode of eval1 are reused."""
    root = held["root"]
    finetune = "--max_epoch 1 --optim adam --optim_conf lr=0.02 --scheduler none --keep_nbest_models 1"
    err = run_recipe(root, "--pretrained", str(user["pack"]), "--train_set", "my_train", "--valid_set", "my_dev",
                     "--test_sets", "eval1", "--dense_control", "false", "--finetune_args", finetune,
                     "--stop_stage", "15", *DECODE).stderr
    exp, raw = root / "exp", root / "dump" / "raw"
    assert f"{held['dense']}/{TAG}/eval1/text exists; skipping" in err
    assert "Stage 11: the dense model is --pretrained" in err and "Stage 11: ASR Training (dense)" not in err
    assert sorted(p.name for p in raw.iterdir()) == ["eval1", "eval2", "my_dev", "my_train", "org"]
    text = kaldi(raw / "my_train" / "text")
    assert len(text) == 8 and text == {u: user["texts"][u] for u in text}
    assert (exp / "asr_stats_pretrained_asr_mine" / "train" / "speech_shape").read_text().count("\n") == 8
    run = exp / "pretrained_asr_mine_sspg0.5"
    config = yaml.safe_load((run / "config.yaml").read_text())
    # The held model's training settings that the pass changed, each on record (old -> new).
    overrides = yaml.safe_load((run / "finetune_overrides.yaml").read_text())
    assert overrides["max_epoch"]["new"] == 1 and overrides["optim_conf.lr"]["new"] == 0.02
    assert "encoder_conf.output_size" not in overrides
    assert config["train_data_path_and_name_and_type"][0][0] == str(raw / "my_train" / "wav.scp")
    assert config["valid_data_path_and_name_and_type"][0][0] == str(raw / "my_dev" / "wav.scp")
    rows = json.loads((root / "results" / "results.json").read_text())
    assert [r["method"] for r in rows] == ["dense", "sspg"] and set(rows[1]["wer"]) == {"eval1"}
    assert "corpus=own, data " in rows[1]["notes"] and "train my_train, valid my_dev" in rows[1]["notes"]
    assert set(rows[1]["mapsswe"]) == {"dense"} and "eval1" in rows[1]["mapsswe"]["dense"]
    assert f"|{LATEST_TAG}/eval1|5|" in (run / "baked" / "RESULTS.md").read_text()
    # Stage 15: the ONNX forms decode encoder + CTC with beam 1, so their reference is the dense
    # model decoded the same way (not the joint beam search of stage 12), named in DEPLOY.
    ctc_ref = held["dense"] / "decode_ctc_asr_model_valid.loss.ave" / "eval1"
    assert (ctc_ref / "text").is_file()
    deploy = json.loads((exp / "DEPLOY.json").read_text())
    assert "CTC prefix search with beam 1 (decode_ctc_asr_model_valid.loss.ave)" in deploy["note"]
    compare = json.loads((run / "baked" / "onnx" / "fp32_onnxruntime" / "decode_eval1" / "mapsswe_vs_dense"
                          / "compare.json").read_text())
    assert compare["hyp_a"].endswith("pretrained_asr_mine/decode_ctc_asr_model_valid.loss.ave/eval1/text")
