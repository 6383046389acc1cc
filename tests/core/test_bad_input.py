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
    assert cfg.method_kwargs() == {"eta": 2.0, "tau_start": 0.5, "tau_end": 0.01}
