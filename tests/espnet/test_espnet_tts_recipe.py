"""The ESPnet TTS recipe end to end on the tiny embedded corpus with a tiny Tacotron2 (CPU).

The ASR recipe's stages 1-11 (``espnet_dense``, shared with the ASR recipe modules) made the
corpus (the TTS recipe's --datadir) and the dense ASR model that scores the synthesized speech;
the NeMo ASR recipe's dense model (``nemo_dense``) is the second, cross-toolkit judge; the TTS
recipe then runs every stage once (module fixture).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "espnet"
ASR_MODEL = "exp/asr_train_asr_conformer_ctc_raw_bpe30"
CROSS_MODEL = "nemo_asr_exp/conformer_ctc_bpe_unigram32/model.nemo"  # nemo_dense's, under each root
TINY_TACOTRON2 = " ".join(f"--tts_conf {kv}" for kv in (
    "embed_dim=16", "eunits=16", "econv_layers=1", "econv_chans=16", "adim=16", "aconv_chans=4", "dunits=32",
    "prenet_units=16", "postnet_layers=1", "postnet_chans=16")) + " --batch_size 4"


def run(cmd, check=True):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd[1]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def tts_cmd(root, *options):
    return ["bash", str(RECIPES / "tts1" / "run.sh"), "--python", sys.executable, "--size", "tiny",
            "--datadir", str(root / "data"), "--dumpdir", str(root / "tts_dump"), "--expdir", str(root / "tts_exp"),
            "--token_listdir", str(root / "tts_token_list"),
            "--results_table", str(root / "results"), "--train_args", f"--max_epoch 1 {TINY_TACOTRON2}",
            # 20 updates (8 sentences, batches of 2) bring the encoder to the target.
            "--finetune_args", "--max_epoch 5 --batch_size 2 --optim_conf lr=0.02", "--n_samples", "1",
            "--asr_recipe", str(root), "--asr_model_dir", ASR_MODEL,
            "--asr_inference_config", str(RECIPES / "asr1" / "conf" / "decode_ctc.yaml"),
            "--cross_asr_model", str(root / CROSS_MODEL), *options]


@pytest.fixture(scope="module")
def recipe(espnet_dense, nemo_dense, tmp_path_factory):
    root = tmp_path_factory.mktemp("tts_recipe")
    for d in ("data", "exp"):  # the shared corpus, and the ASR recipe's experiments (read only)
        (root / d).symlink_to(espnet_dense / d)
    (root / "nemo_asr_exp").symlink_to(nemo_dense / "exp")
    proc = run(tts_cmd(root))
    exp = root / "tts_exp"
    dense = exp / "tts_train_tacotron2_raw_char"
    return {"root": root, "exp": exp, "dense": dense, "control": Path(f"{dense}_finetune"),
            "baked": Path(f"{dense}_sspg0.5") / "baked", "stderr": proc.stderr}


def test_every_stage_ran_and_wrote_results(recipe):
    exp, synth = recipe["exp"], "decode_valid.loss.ave_griffin_lim/test"
    for model in (recipe["dense"], recipe["control"], recipe["baked"]):
        assert len((model / synth / "wav.scp").read_text().splitlines()) == 4  # the tiny test set
        assert json.loads((model / synth / "tts_metrics" / "tts_metrics.json").read_text())["mcd"] > 0
    for ref in ("dense", "dense_finetune"):
        assert (recipe["baked"] / synth / "asr_asr_train_asr_conformer_ctc_raw_bpe30" / f"mapsswe_vs_{ref}" /
                "compare.json").is_file()
        assert (recipe["baked"] / synth / "judges" / "pocketsphinx" / f"mapsswe_vs_{ref}" / "compare.json").is_file()
    assert json.loads((exp / "judges" / "test" / "judges.json").read_text())["utterances"] == 4  # the recordings
    results = (exp / "RESULTS.md").read_text()
    assert all(f"|tts_train_tacotron2_raw_char{s}|" in results for s in ("", "_finetune", "_sspg0.5"))
    rows = json.loads((recipe["root"] / "results" / "results.json").read_text())
    assert [(r["task"], r["method"]) for r in rows] == [("tts", "dense"), ("tts", "dense_finetune"), ("tts", "sspg")]
    assert rows[2]["reference"] == "dense_finetune" and set(rows[2]["mapsswe"]) == {"dense", "dense_finetune"}
    assert set(rows[2]["pocketsphinx_mapsswe"]) == {"dense", "dense_finetune"}
    # The other toolkit's ASR model judged every model too, its tests against the same references.
    assert all(set(r["cross_cer"]) == {"test"} for r in rows)
    assert set(rows[2]["cross_mapsswe"]) == {"dense", "dense_finetune"}
    cross = "cross_asr_conformer_ctc_bpe_unigram32"
    assert f"ASR model (`{cross}`) as a second judge" in results and f"cross ASR judge {cross}" in rows[0]["notes"]
    assert all(1 <= r["dnsmos_ovrl"] <= 5 and r["pocketsphinx_cer"] >= 0 for r in rows)
    assert "|the recordings|" in results and "pocketsphinx CER of the recordings" in rows[0]["notes"]
    # The control had the compression pass's length: the same finetune_args, no pruning.
    control_log = (recipe["control"] / "train.log").read_text()
    assert "--max_epoch 5" in control_log and "--init_param" in control_log and "loss_sparsity" not in control_log
    assert (recipe["control"] / "latest.pth").resolve().name == "5epoch.pth"
    # The gated matrices at the target as the pass's last epoch left them (nothing rescaled at
    # bake); the encoder's share counts its biases and norms too.
    comp = recipe["baked"].parent
    assert "/latest.pth -> " in (comp / "bake.log").read_text()
    sparsity = json.loads((recipe["baked"] / "sparsity.json").read_text())
    assert sparsity["sparsity_trained"] == sparsity["sparsity_gated"] == pytest.approx(0.5, abs=0.02)
    assert 0.3 < rows[2]["encoder_sparsity"] < 0.5 and rows[0]["encoder_sparsity"] < 0.01
    assert rows[1]["encoder_sparsity"] < 0.01
    sample = next((exp / "samples").iterdir())
    assert {p.name for p in sample.iterdir()} >= {"mel.png", "reference.wav"}
    # No step tried the network: the recipe's own messages and every step's log.
    logs = {"stderr": recipe["stderr"], **{str(p): p.read_text(errors="replace") for p in exp.rglob("*.log")}}
    for name, text in logs.items():
        assert "urlopen" not in text and "Error loading" not in text, name


def test_baked_model_loads_in_plain_espnet2_and_only_the_encoder_is_sparse(recipe):
    baked = recipe["baked"]
    code = f"""
import sys
from espnet2.bin.tts_inference import Text2Speech
t2s = Text2Speech(train_config={str(baked / 'config.yaml')!r}, model_file={str(baked / 'model.pth')!r})
assert "pinch" not in sys.modules
zeros = {{}}
for name, p in t2s.model.named_parameters():
    part = "enc" if name.startswith("tts.enc.") else "rest"
    z, n = zeros.get(part, (0, 0))
    zeros[part] = (z + int((p == 0).sum()), n + p.numel())
wav = t2s("call emma")["wav"]
print(zeros["enc"][0] / zeros["enc"][1], zeros["rest"][0] / zeros["rest"][1], len(wav))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    enc, rest, samples = proc.stdout.strip().splitlines()[-1].split()  # espnet2 prints too
    assert float(enc) > 0.3 and float(rest) < 0.01 and int(samples) > 0


def test_a_sentence_it_cannot_spell_is_named_and_the_others_are_synthesized(recipe):
    root = recipe["root"]
    text = root / "tts_dump" / "raw" / "test" / "text"
    original = text.read_text()
    try:
        text.write_text(original + "zz-bad-1 caf\u00e9 at noon\n")
        # The dense model alone (--pruning none: no compression run, as the ASR recipe's).
        proc = run(tts_cmd(root, "--stage", "9", "--stop_stage", "9", "--overwrite", "true", "--pruning", "none",
                           "--dense_control", "false"))
    finally:
        text.write_text(original)
    out = recipe["dense"] / "decode_valid.loss.ave_griffin_lim" / "test"
    assert "1 sentence(s) skipped" in proc.stderr
    assert (out / "skipped").read_text() == "zz-bad-1: characters not in the token list: '\u00e9'\n"
    assert len((out / "wav.scp").read_text().splitlines()) == 4
    assert proc.stderr.count("waveforms in") == 1  # the dense model's only


def test_bad_options_are_refused_with_their_name(recipe, tmp_path):
    proc = run(tts_cmd(recipe["root"], "--vocoder_file", str(tmp_path / "none.pkl")), check=False)
    assert proc.returncode != 0 and "--vocoder_file" in proc.stderr and "no such file" in proc.stderr
    # espnet2's Text2Speech reads ParallelWaveGAN .pkl vocoders only: another file stops before stage 1.
    (tmp_path / "vocoder.pth").write_bytes(b"")
    proc = run(tts_cmd(recipe["root"], "--vocoder_file", str(tmp_path / "vocoder.pth")), check=False)
    assert proc.returncode != 0 and "reads ParallelWaveGAN checkpoints only (.pkl" in proc.stderr
    assert "Stage 1" not in proc.stderr
    proc = run(tts_cmd(recipe["root"], "--stage", "10", "--asr_model_dir", "exp/nothing"), check=False)
    assert proc.returncode != 0 and "exp/nothing/config.yaml is missing" in proc.stderr


def pack_with_espnet2(dense, stats, tree, zip_path):
    """The recipe's dense model packed as a user would get it: espnet2.bin.pack tts, run from a
    tree where its config names the statistics by a path relative to the pack's root."""
    import yaml

    config = yaml.safe_load((dense / "config.yaml").read_text())
    config["normalize_conf"]["stats_file"] = "exp/tts_stats/train/feats_stats.npz"
    (tree / "exp" / "tts_tiny").mkdir(parents=True)
    (tree / "exp" / "tts_stats" / "train").mkdir(parents=True)
    (tree / "exp" / "tts_tiny" / "config.yaml").write_text(yaml.safe_dump(config))
    (tree / "exp" / "tts_tiny" / "train.loss.ave.pth").write_bytes((dense / "valid.loss.ave.pth").read_bytes())
    (tree / config["normalize_conf"]["stats_file"]).write_bytes(stats.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "espnet2.bin.pack", "tts", "--train_config", "exp/tts_tiny/config.yaml",
                           "--model_file", "exp/tts_tiny/train.loss.ave.pth", "--option",
                           config["normalize_conf"]["stats_file"], "--outpath", str(zip_path)],
                          cwd=tree, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return zip_path, config


def pretrained_root(recipe, tmp_path):
    """A recipe root of its own on the fixture's corpus and dumps, nothing trained in it."""
    root = tmp_path / "pre"
    root.mkdir()
    for d in ("data", "tts_dump", "exp", "nemo_asr_exp"):  # exp, nemo_asr_exp: the ASR judges'
        (root / d).symlink_to(recipe["root"] / d)
    return root


def test_a_held_model_packed_by_espnet2_is_compressed_and_its_settings_changes_are_on_record(recipe, tmp_path):
    import torch
    import yaml

    stats = recipe["exp"] / "tts_stats_raw_char" / "train" / "feats_stats.npz"
    pack, config = pack_with_espnet2(recipe["dense"], stats, tmp_path / "tree", tmp_path / "tts_tiny.zip")
    root = pretrained_root(recipe, tmp_path)
    proc = run(tts_cmd(root, "--pretrained", str(pack), "--corpus", "embedded", "--stage", "4", "--stop_stage", "8",
                       "--train_args", "", "--dense_control", "false"))
    assert "Stage 6: the dense model is --pretrained" in proc.stderr and "TTS Training (dense)" not in proc.stderr
    dense = root / "tts_exp" / "tts_pretrained_tts_tiny"
    placed = yaml.safe_load((dense / "config.yaml").read_text())
    assert placed["normalize_conf"]["stats_file"] == str(dense / "feats_stats.npz")
    assert (dense / "tokens.txt").read_text().split() == config["token_list"]
    assert torch.equal(torch.load(dense / "valid.loss.ave.pth")["tts.enc.embed.weight"],
                       torch.load(recipe["dense"] / "valid.loss.ave.pth")["tts.enc.embed.weight"])
    run_dir = root / "tts_exp" / "tts_pretrained_tts_tiny_sspg0.5"
    # The pass normalised the features with the model's own statistics, not the recipe's.
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["normalize_conf"]["stats_file"] == str(dense / "feats_stats.npz")
    overrides = yaml.safe_load((run_dir / "finetune_overrides.yaml").read_text())
    assert overrides["max_epoch"] == {"old": 1, "new": 5} and overrides["optim_conf.lr"]["new"] == 0.02
    sparsity = json.loads((run_dir / "baked" / "sparsity.json").read_text())
    assert sparsity["sparsity_gated"] == pytest.approx(0.5, abs=0.02)


def test_a_held_model_without_data_named_or_of_another_task_is_refused(recipe, tmp_path):
    root = pretrained_root(recipe, tmp_path)
    asr_pack = tmp_path / "asr"
    asr_pack.mkdir()
    (asr_pack / "meta.yaml").write_text("yaml_files: {asr_train_config: exp/a/config.yaml}\nfiles: {asr_model_file: exp/a/m.pth}\n")
    proc = run(tts_cmd(root, "--pretrained", str(asr_pack)), check=False)
    assert proc.returncode != 0 and "name the data to fine-tune and test it on: --corpus embedded" in proc.stderr
    proc = run(tts_cmd(root, "--pretrained", str(asr_pack), "--corpus", "embedded", "--stage", "4", "--stop_stage", "4"),
               check=False)
    assert proc.returncode != 0 and "no yaml_files.train_config / files.model_file: not an ESPnet TTS model pack" in proc.stderr
    assert not (root / "tts_exp" / "tts_pretrained_asr").exists()


TINY_FASTSPEECH2 = " ".join(f"--tts_conf {kv}" for kv in (
    "adim=16", "aheads=2", "elayers=1", "eunits=16", "dlayers=1", "dunits=16", "duration_predictor_chans=16",
    "energy_predictor_chans=16", "pitch_predictor_chans=16", "postnet_layers=1", "postnet_chans=16")) + " --batch_size 4"


def test_a_fastspeech2_learns_from_the_tacotron2s_durations_and_is_compressed(recipe):
    """egs2's non-autoregressive path: the recipe's dense Tacotron2 (reduction factor 2, as the
    FastSpeech2 config's) decodes the training and validation sets with teacher forcing at stage 5;
    the FastSpeech2 trains on those durations, with pitch and energy token-averaged over them and
    normalized by statistics of stage 5, is compressed and synthesizes the test set."""
    import soundfile as sf

    root, exp = recipe["root"], recipe["root"] / "fs2_exp"
    fs2 = str(RECIPES / "tts1" / "conf" / "train_fastspeech2.yaml")
    refused = run(tts_cmd(root, "--expdir", str(exp), "--train_config", fs2), check=False)
    assert refused.returncode != 0 and "tts fastspeech2 trains on durations: pass --teacher_model" in refused.stderr
    assert "Stage 1" not in refused.stderr
    proc = run(tts_cmd(root, "--expdir", str(exp), "--train_config", fs2,
                       "--teacher_model", str(recipe["dense"] / "valid.loss.ave.pth"),
                       "--train_args", f"--max_epoch 1 {TINY_FASTSPEECH2}", "--dense_control", "false",
                       "--stage", "5", "--stop_stage", "9"))
    assert "Stage 5: Durations of train and dev from" in proc.stderr
    teacher = exp / "teacher_tts_train_tacotron2_raw_char"
    texts = dict(line.split(" ", 1) for line in (root / "tts_dump" / "raw" / "dev" / "text").read_text().splitlines())
    wavs = dict(line.split(" ", 1) for line in (root / "tts_dump" / "raw" / "dev" / "wav.scp").read_text().splitlines())
    durations = {u: [int(d) for d in ds.split()] for u, ds in
                 (line.split(" ", 1) for line in (teacher / "dev" / "durations").read_text().splitlines())}
    assert durations.keys() == texts.keys() and (teacher / "train" / "durations").is_file()
    for utt, ds in durations.items():
        assert len(ds) == len(texts[utt]) + 1  # a character each, and the end of the sentence
        frames = sf.info(wavs[utt]).frames // 256 + 1  # the fbank's frames (hop 256, centred)
        assert 0 <= frames - 2 * sum(ds) < 2  # reduction factor 2
    stats = exp / "tts_stats_train_fastspeech2_raw_char" / "train"
    assert (stats / "pitch_stats.npz").is_file() and (stats / "energy_stats.npz").is_file()
    dense = exp / "tts_train_fastspeech2_raw_char"
    import yaml
    config = yaml.safe_load((dense / "config.yaml").read_text())
    assert config["tts"] == "fastspeech2" and config["pitch_normalize_conf"]["stats_file"].endswith("pitch_stats.npz")
    assert any(p[0].endswith("dev/durations") for p in config["valid_data_path_and_name_and_type"])
    baked = Path(f"{dense}_sspg0.5") / "baked"
    assert json.loads((baked / "sparsity.json").read_text())["sparsity_gated"] > 0.3
    for model in (dense, baked):
        assert len((model / "decode_valid.loss.ave_griffin_lim" / "test" / "wav.scp").read_text().splitlines()) == 4


def test_a_character_ctc_aligner_gives_stage_5_its_durations(recipe, tmp_path):
    """--aligner_model, the other source of durations: stage 5 force-aligns the training and
    validation recordings with a character CTC model (a random tiny one here: the wiring, not
    its skill), one count per character and the end of sentence over the reduced frames."""
    import soundfile as sf
    from espnet_tiny import tiny_char_aligner

    root, exp = recipe["root"], tmp_path / "exp"
    aligner = tiny_char_aligner(tmp_path / "aligner", root / "tts_token_list" / "char" / "tokens.txt")
    fs2 = str(RECIPES / "tts1" / "conf" / "train_fastspeech2.yaml")
    both = run(tts_cmd(root, "--expdir", str(exp), "--train_config", fs2, "--aligner_model",
                       str(aligner / "model.pth"), "--teacher_model", str(recipe["dense"] / "valid.loss.ave.pth")),
               check=False)
    assert both.returncode != 0 and "--teacher_model and --aligner_model: give one source of durations" in both.stderr
    proc = run(tts_cmd(root, "--expdir", str(exp), "--train_config", fs2, "--aligner_model", str(aligner / "model.pth"),
                       "--stage", "5", "--stop_stage", "5"))
    assert "CTC alignment of the recordings" in proc.stderr
    texts = dict(line.split(" ", 1) for line in (root / "tts_dump" / "raw" / "dev" / "text").read_text().splitlines())
    wavs = dict(line.split(" ", 1) for line in (root / "tts_dump" / "raw" / "dev" / "wav.scp").read_text().splitlines())
    found = exp / "aligner_aligner"
    durations = {u: [int(d) for d in ds.split()] for u, ds in
                 (line.split(" ", 1) for line in (found / "dev" / "durations").read_text().splitlines())}
    assert durations.keys() == texts.keys() and (found / "train" / "durations").is_file()
    for utt, ds in durations.items():
        assert len(ds) == len(texts[utt]) + 1
        assert sum(ds) == (sf.info(wavs[utt]).frames // 256 + 1) // 2  # hop 256, centred; reduction factor 2


def test_teacher_durations_refuse_a_student_that_counts_other_frames_or_tokens(recipe, tmp_path):
    import yaml

    from pinch.espnet.bin import teacher_durations

    student = yaml.safe_load((RECIPES / "tts1" / "conf" / "train_fastspeech2.yaml").read_text())
    dense = recipe["dense"]
    common = ["--train_config", str(dense / "config.yaml"), "--model_file", str(dense / "valid.loss.ave.pth"),
              "--set", str(recipe["root"] / "tts_dump" / "raw" / "dev"), str(tmp_path / "dev")]
    cases = [({"tts_conf": {**student["tts_conf"], "reduction_factor": 1}},
              "tts_conf.reduction_factor is 1, the teacher's reduction factor 2"),
             ({"pitch_extract_conf": {**student["pitch_extract_conf"], "reduction_factor": 1}},
              "pitch_extract_conf.reduction_factor is 1"),
             ({"token_list": ["<blank>", "<unk>", "a", "<sos/eos>"]}, "its token list differs from the teacher's"),
             ({"tts": "tacotron2"}, "tts tacotron2 does not train on durations")]
    for change, message in cases:
        path = tmp_path / "student.yaml"
        path.write_text(yaml.safe_dump({**student, **change}))
        with pytest.raises(SystemExit, match=message):
            teacher_durations.main(common + ["--student_config", str(path)])
    assert not (tmp_path / "dev").exists()  # refused before any decoding
