"""Gates under autocast (espnet2's --use_amp, Lightning's bf16-mixed / 16-mixed): the masks and
the thresholds stay in fp32, so a mixed-precision step keeps exactly the weights an fp32 step
keeps, and the gradients of weights and thresholds match fp32's to the precision of the format.
Both paths of the gate bank (the fused one is the default on CUDA), on CPU and, where there is
one, on a GPU."""
import copy

import pytest
import torch

import pinch
from pinch.gates.gate import iter_gates
from tests.conftest import make_toy_data


def _step(model, pruner, x, y, dtype, device):
    """One forward and backward (penalty included); the gradients, and the masks the forward used
    (the weight each gated module saw, read by a pre-hook that runs after pinch's)."""
    masks, hooks = {}, []
    for name, _ in iter_gates(model):
        module_name = name.rsplit(".", 1)[0]
        module = model.get_submodule(module_name)
        hooks.append(module.register_forward_pre_hook(
            lambda mod, args, n=name: masks.__setitem__(n, mod.weight.detach())))
    model.zero_grad()
    with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
        loss = ((model(x) - y) ** 2).mean()
    (loss.float() + pruner.penalty()).backward()
    for h in hooks:
        h.remove()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.float().item(), grads, masks


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="autocast on CUDA needs a GPU")])])
@pytest.mark.parametrize("gate_path", ["per_matrix", "fused"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_masks_and_gradients_under_autocast_match_fp32(converged_toy, dtype, gate_path, device):
    x, y = (t.to(device) for t in make_toy_data())
    models = {}
    for name, path in (("fp32", "per_matrix"), ("mixed", gate_path)):  # the reference: fp32, per matrix
        torch.manual_seed(0)
        model = copy.deepcopy(converged_toy).to(device)
        pruner = pinch.Pruner(model, method="sspg", target_sparsity=0.5, targets=[r"encoder\..*"], total_steps=100,
                              gate_path=path)
        with torch.no_grad():  # thresholds that prune about half: the masks have something to decide
            for _, gate in iter_gates(model):
                gate.threshold.fill_(float(gate.weight.abs().median()))
        models[name] = (model, pruner)
    loss32, grads32, masks32 = _step(*models["fp32"], x, y, None, device)
    loss16, grads16, masks16 = _step(*models["mixed"], x, y, dtype, device)
    assert all(w.dtype == torch.float32 for w in masks16.values())  # the masked weights too
    masks16, masks32 = ({n: w != 0 for n, w in m.items()} for m in (masks16, masks32))
    assert next(iter_gates(models["mixed"][0]))[1].threshold.dtype == torch.float32  # the parameter stays fp32
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32
               for p in models["mixed"][0].parameters() if p.grad is not None)
    # The same weights kept: the comparison W^2 >= t^2 is made in fp32 on the fp32 parameters.
    assert masks16.keys() == masks32.keys() == {"encoder.0.weight", "encoder.2.weight", "encoder.4.weight"}
    for n in masks32:
        assert torch.equal(masks16[n], masks32[n]), n
    kept = sum(int(m.sum()) for m in masks32.values())
    total = sum(m.numel() for m in masks32.values())
    assert 0.3 < kept / total < 0.7
    # Gradients: the format's precision (bf16 keeps 8 bits of mantissa, fp16 11), relative to
    # each tensor's scale.
    tol = {torch.bfloat16: 0.05, torch.float16: 0.01}[dtype]
    assert abs(loss16 - loss32) <= tol * abs(loss32)
    for n, g in grads32.items():
        err = (grads16[n] - g).norm() / g.norm().clamp_min(1e-12)
        assert err < tol, f"{n}: relative gradient error {err:.4f}"
