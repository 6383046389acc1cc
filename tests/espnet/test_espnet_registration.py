"""pinch's ASR task: espnet2's parser and YAML configs accept the pruning section."""
import subprocess
import sys

import pytest
import yaml
from espnet2.tasks.asr import ASRTask as PlainASRTask

from pinch.espnet.choices import resolve_pruning
from pinch.espnet.tasks.asr import ASRTask
from espnet_tiny import parse_tiny


def write_config(tmp_path, d):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(d))
    return str(path)


def test_yaml_pruning_section_is_parsed(tmp_path):
    config = write_config(tmp_path, {
        "pruning": "sspg",
        "pruning_conf": {"target_sparsity": 0.5, "preset": "conformer", "eta": 2.0},
    })
    args = parse_tiny(tmp_path, "--config", config)
    cfg = resolve_pruning(args)
    assert (cfg.method, cfg.target_sparsity, cfg.preset, cfg.eta) == ("sspg", 0.5, "conformer", 2.0)


def test_plain_espnet2_parser_is_untouched(tmp_path):
    """Registration is scoped to pinch's task: espnet2's own ASRTask still rejects the key."""
    config = write_config(tmp_path, {"pruning": "sspg"})
    with pytest.raises(SystemExit):
        PlainASRTask.get_parser().parse_args(["--config", config])


@pytest.mark.parametrize("choice", ["none", "sspg", "ump", "global_magnitude", "gmp", "imp", "l1"])
def test_every_method_is_a_choice(tmp_path, choice):
    args = parse_tiny(tmp_path, "--pruning", choice)
    assert args.pruning == (None if choice == "none" else choice)


def test_unknown_top_level_key_is_rejected(tmp_path, capsys):
    config = write_config(tmp_path, {"pruning": "sspg", "pruning_sparsity": 0.5})
    with pytest.raises(SystemExit):
        parse_tiny(tmp_path, "--config", config)
    assert "pruning_sparsity" in capsys.readouterr().err


def test_unknown_method_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_tiny(tmp_path, "--pruning", "magic")
    assert "magic" in capsys.readouterr().err


@pytest.mark.parametrize(
    "conf,message",
    [
        ({"target_sparsity": 0.5, "preset": "conformer", "sparsity_goal": 1}, "sparsity_goal"),
        ({"target_sparsity": 1.5, "preset": "conformer"}, "target_sparsity"),
        ({"target_sparsity": 0.5}, "preset"),
    ],
)
def test_bad_pruning_conf_stops_main_with_its_name(tmp_path, conf, message):
    config = write_config(tmp_path, {"pruning": "sspg", "pruning_conf": conf})
    args = parse_tiny(tmp_path, "--config", config, "--output_dir", str(tmp_path / "exp"))
    with pytest.raises(SystemExit) as err:
        ASRTask.main(args=args)
    assert message in str(err.value)
    assert not (tmp_path / "exp").exists(), "failed before any output was written"


def test_shared_preset_file_and_overrides(tmp_path):
    preset = tmp_path / "sspg.yaml"
    preset.write_text(yaml.safe_dump({"method": "sspg", "target_sparsity": 0.65, "preset": "conformer",
                                      "eta": 1.0, "tau_start": 0.5, "tau_end": 0.01,
                                      "targets": None, "granularity": "unstructured"}))
    args = parse_tiny(tmp_path, "--pruning_config", str(preset), "--pruning_conf", "target_sparsity=0.8")
    cfg = resolve_pruning(args)
    assert (cfg.method, cfg.target_sparsity) == ("sspg", 0.8)
    # Written back so config.yaml is self-contained.
    assert args.pruning == "sspg" and args.pruning_config is None
    assert args.pruning_conf["preset"] == "conformer"


def test_preset_file_disagreeing_with_pruning_is_an_error(tmp_path):
    preset = tmp_path / "ump.yaml"
    preset.write_text(yaml.safe_dump({"method": "ump", "target_sparsity": 0.5, "preset": "conformer"}))
    args = parse_tiny(tmp_path, "--pruning", "sspg", "--pruning_config", str(preset))
    with pytest.raises(ValueError, match="disagrees"):
        resolve_pruning(args)


def test_preset_matching_no_layer_names_preset_and_model(tmp_path):
    """One line through the direct entry point, not a traceback."""
    args = parse_tiny(tmp_path, "--pruning", "sspg", "--pruning_conf", "target_sparsity=0.5",
                      "--pruning_conf", "preset=wav2vec2")
    with pytest.raises(SystemExit, match="ASRTask: pruning: preset 'wav2vec2' matches no .* of ESPnetASRModel"):
        ASRTask.build_model(args)


@pytest.mark.parametrize("text", ["", "target_sparsity: 0.5\npreset: conformer\n", "[sspg]\n"])
def test_a_pruning_file_without_a_method_stops_training_naming_it(tmp_path, text):
    """An empty preset file must not give an ordinary dense run."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    args = parse_tiny(tmp_path, "--pruning_config", str(path), "--output_dir", str(tmp_path / "exp"))
    with pytest.raises(SystemExit, match="empty.yaml"):
        ASRTask.main(args=args)
    assert not (tmp_path / "exp").exists()


def test_print_config_shows_a_complete_pruning_template():
    # espnet2 reads --print_config's options from the command line itself: run it as users do.
    out = subprocess.run([sys.executable, "-m", "pinch.espnet.bin.asr_train", "--print_config", "--pruning", "sspg"],
                         capture_output=True, text=True, check=True).stdout
    printed = yaml.safe_load(out)
    assert printed["pruning"] == "sspg"
    assert {"target_sparsity": 0.65, "eta": "auto", "reach_at": 0.2, "preset": None}.items() \
        <= printed["pruning_conf"].items()


def test_thresholds_get_no_weight_decay(tmp_path):
    args = parse_tiny(tmp_path, "--pruning", "sspg", "--pruning_conf", "target_sparsity=0.5",
                      "--pruning_conf", "preset=conformer", "--optim", "adamw", "--optim_conf", "weight_decay=0.1")
    model = ASRTask.build_model(args)
    (optimizer,) = ASRTask.build_optimizers(args, model)
    thresholds = {id(p) for n, p in model.named_parameters() if n.endswith("_threshold")}
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert thresholds and all(decay[t] == 0.0 for t in thresholds)
    assert {decay[id(p)] for n, p in model.named_parameters() if id(p) not in thresholds} == {0.1}
    assert len(decay) == sum(1 for _ in model.parameters()), "every parameter in exactly one group"
