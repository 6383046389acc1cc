"""Every bad input names its problem; nothing silently does nothing."""
import pytest
import torch

import pinch
from tests.conftest import ToyNet


@pytest.mark.parametrize("target", [-0.1, 1.0, 1.5, float("nan"), "0.5", True])
def test_target_sparsity_out_of_range(target):
    with pytest.raises(ValueError, match="target_sparsity"):
        pinch.Pruner(ToyNet(), target_sparsity=target, targets=["encoder.*"], total_steps=10)


def test_unknown_method_preset_key_and_option():
    with pytest.raises(ValueError, match="unknown pruning method 'magic'"):
        pinch.Pruner(ToyNet(), method="magic", targets=["encoder.*"], total_steps=10)
    with pytest.raises(ValueError, match="unknown preset 'resnet'"):
        pinch.Pruner(ToyNet(), preset="resnet", total_steps=10)
    with pytest.raises(ValueError, match=r"unknown pruning key\(s\) \['target_sparsty'\]"):
        pinch.PruningConfig.from_dict({"target_sparsty": 0.5, "preset": "conformer"})
    with pytest.raises(ValueError, match="has no option"):
        pinch.Pruner(ToyNet(), method="ump", targets=["encoder.*"], total_steps=10, rounds=3)
    with pytest.raises(ValueError, match="total_steps"):
        pinch.Pruner(ToyNet(), targets=["encoder.*"])


def test_preset_matching_nothing_names_preset_and_model():
    with pytest.raises(ValueError, match="preset 'conformer' matches no .* of ToyNet"):
        pinch.Pruner(ToyNet(), preset="conformer", total_steps=10)
    with pytest.raises(ValueError, match=r"targets \['decoder\.\*'\] matches no"):
        pinch.Pruner(ToyNet(), targets=["decoder.*"], total_steps=10)


def test_non_finite_threshold_stops_training():
    model = ToyNet()
    pruner = pinch.Pruner(model, targets=["encoder.*"], total_steps=10)
    with torch.no_grad():
        model.encoder[2].weight_threshold.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="encoder.2.weight_threshold"):
        pruner.step()


def test_gating_twice_is_refused():
    model = ToyNet()
    pinch.Pruner(model, targets=["encoder.*"], total_steps=10)
    with pytest.raises(ValueError, match="already has pinch gates"):
        pinch.Pruner(model, targets=["encoder.*"], total_steps=10)


def test_config_from_yaml_mapping_round_trips_method_options():
    cfg = pinch.PruningConfig.from_dict({"method": "gmp", "target_sparsity": 0.8, "preset": "conformer",
                                         "frequency": 0.05})
    assert cfg.options == {"frequency": 0.05} and cfg.method_kwargs() == {"frequency": 0.05}
    cfg = pinch.PruningConfig.from_dict({"target_sparsity": 0.5, "targets": ["encoder.*"], "eta": 2.0})
    assert cfg.method_kwargs() == {"eta": 2.0, "tau_start": 0.5, "tau_end": 0.01, "reach_at": 0.2}
    assert pinch.PruningConfig.from_dict({"preset": "conformer"}).eta == "auto"


@pytest.mark.parametrize("key, value", [
    ("eta", "lots"), ("eta", -1.0), ("eta", True), ("eta", float("inf")), ("tau_start", 0), ("tau_end", "x"),
    ("reach_at", 0), ("reach_at", 1.5), ("preset", 3), ("targets", "encoder.*"), ("targets", [1]),
    ("method", ["sspg"]),
])
def test_every_key_is_type_checked_with_a_message_naming_it(key, value):
    with pytest.raises(ValueError, match=f"'{key}'|{key} must|unknown pruning method"):
        pinch.PruningConfig.from_dict({"preset": "conformer", key: value})


@pytest.mark.parametrize("method, key, value", [
    ("gmp", "begin", "soon"), ("gmp", "end", 2), ("gmp", "frequency", 0), ("gmp", "scope", "everywhere"),
    ("imp", "rounds", 0), ("imp", "rounds", 2.5), ("imp", "rounds", "4"), ("l1", "lam", 0), ("l1", "prune_at", None),
])
def test_method_options_are_type_checked(method, key, value):
    with pytest.raises(ValueError, match=f"pruning key '{key}' must be"):
        pinch.PruningConfig.from_dict({"method": method, "preset": "conformer", key: value})


def test_integer_options_come_back_as_int():
    cfg = pinch.PruningConfig.from_dict({"method": "imp", "preset": "conformer", "rounds": 3.0})
    assert cfg.options == {"rounds": 3} and isinstance(cfg.options["rounds"], int)


@pytest.mark.parametrize("text, problem", [
    ("", "found nothing"), ("# only a comment\n", "found nothing"), ("- sspg\n", "found list"),
    ("target_sparsity: 0.5\npreset: conformer\n", "no 'method'"),
])
def test_a_preset_file_without_a_method_is_an_error_naming_the_file(tmp_path, text, problem):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"{path}.*{problem}"):
        pinch.PruningConfig.read_file(path)


def test_template_lists_every_key_a_method_takes():
    sspg = pinch.PruningConfig.template("sspg")
    assert sspg["target_sparsity"] == 0.65 and sspg["eta"] == "auto" and "preset" in sspg and "reach_at" in sspg
    gmp = pinch.PruningConfig.template("gmp")
    assert {"begin": 0.0, "end": 0.75, "frequency": 0.02}.items() <= gmp.items()
    pinch.PruningConfig.from_dict({**gmp, "preset": "conformer"})  # the template itself is valid


def test_preset_lists_and_auto_are_checked_by_name():
    with pytest.raises(ValueError, match="unknown preset 'resnet'"):
        pinch.PruningConfig.from_dict({"preset": ["conformer", "resnet"]})
    with pytest.raises(ValueError, match="must be a preset name or a list of names, got 5"):
        pinch.PruningConfig.from_dict({"preset": 5})
    with pytest.raises(ValueError, match="preset 'auto' knows no preset for ToyNet"):
        pinch.Pruner(ToyNet(), preset="auto", total_steps=10)


def test_the_structured_search_presets_are_valid_and_labelled_by_what_they_change():
    """conf/pruning/sspg_structured*.yaml: the search's four passes, each a valid config whose
    results rows get a label of their own (pinch.config.variant)."""
    from pathlib import Path

    from pinch.config import variant

    conf = Path(__file__).resolve().parents[2] / "conf" / "pruning"
    found = {}
    for name in ("sspg_structured", "sspg_structured_rows", "sspg_structured_blocks", "sspg_structured_distill"):
        mapping = pinch.PruningConfig.read_file(conf / f"{name}.yaml")
        cfg = pinch.PruningConfig.from_dict(mapping)
        assert cfg.granularity == "structured"
        found[name] = variant(mapping)
    assert found == {"sspg_structured": None, "sspg_structured_rows": "rows cost",
                     "sspg_structured_blocks": "block gates", "sspg_structured_distill": "distilled"}
    assert variant({"group_cost": "rows", "distill_weight": 2}) == "rows cost, distilled"
    for name, label in (("sspg_settle", "settled"), ("sspg_distill", "distilled"), ("sspg", None)):
        mapping = pinch.PruningConfig.read_file(conf / f"{name}.yaml")
        assert pinch.PruningConfig.from_dict(mapping).granularity == "unstructured" and variant(mapping) == label
    with pytest.raises(ValueError, match="group_cost"):
        pinch.PruningConfig.from_dict({"preset": "conformer", "granularity": "structured", "group_cost": "heads"})
