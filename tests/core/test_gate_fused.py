"""The compiled gate computes what the eager one does, and a failing compiler is survivable."""
import logging
import shutil

import pytest
import torch

from pinch.gates import masking
from pinch.gates.masking import kept_total, pinch_weight, pinch_weights

FUSED = [masking._masked_and_count, masking._kept_groups, masking._gradients]
STACKED = [masking._stack_masked_and_count, masking._stack_kept_groups, masking._stack_gradients]


def _run(w, t, groups, soft, eta):
    w = w.detach().clone().requires_grad_(True)
    t = t.detach().clone().requires_grad_(True)
    up = torch.linspace(-1, 1, w.numel()).view_as(w)
    masked, kept = pinch_weight(w, t, 0.3, groups, soft_weight_grad=soft)
    ((masked * up).sum() + eta * kept).backward()
    return masked.detach(), kept.detach(), w.grad, t.grad, kept_total([(w, t, groups, None), (2 * w, t, groups, 3)])


def _run_list(w, t, soft, eta, path, device="cpu"):
    """Three matrices in one call, two gated per weight (one stack on the fused path) and one per
    row, with their own costs."""
    w, t = w.to(device), t.to(device)
    ws = [w.detach().clone().requires_grad_(True), w.detach().t().contiguous().requires_grad_(True),
          (w.detach() * 1.5).requires_grad_(True)]
    ts = [t.detach().clone().requires_grad_(True), (t.detach() / 2).requires_grad_(True),
          t.detach().clone().requires_grad_(True)]
    up = torch.linspace(-1, 1, w.numel(), device=device)
    groups, costs = (w.numel(), w.shape[1], w.numel()), torch.tensor([1, 5, 1], device=device)
    masked, kept = pinch_weights(ws, ts, 0.3, groups, costs, soft, path=path)
    (sum((m.flatten() * up).sum() for m in masked) + eta * kept).backward()
    count = kept_total(list(zip(ws, ts, groups, costs.tolist())), costs, path)
    return (*(m.detach() for m in masked), kept.detach(), count, *(x.grad for x in ws + ts))


CASES = [(None, False, 0.0), (None, False, 0.5), (None, True, 0.5), (6, False, 0.5)]


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                    reason="torch.compile on CPU needs a C++ compiler; the gate then runs eagerly")
def test_compiled_gate_matches_eager(monkeypatch):
    torch.manual_seed(0)
    w, t = torch.randn(6, 4), torch.tensor(0.7)
    monkeypatch.setenv("PINCH_COMPILE", "0")
    runs = [(_run, case) for case in CASES] + [(_run_list, (soft, 0.5, path)) for soft in (False, True)
                                               for path in ("per_matrix", "fused")]
    eager = [run(w, t, *case) for run, case in runs]
    monkeypatch.setenv("PINCH_COMPILE", "1")
    for (run, case), ref in zip(runs, eager):
        got = run(w, t, *case)
        for a, b in zip(got, ref):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), case
    assert not any(f.failed for f in FUSED + STACKED), "the compiled path fell back to eager"
    assert all(f.compiled for f in FUSED + STACKED), "a path was not compiled"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="the CUDA kernels need a GPU")
def test_both_paths_compiled_on_cuda_match_eager_on_cpu(monkeypatch):
    """On a GPU, where the fused path is the default: Triton kernels, the values of the CPU's eager math."""
    torch.manual_seed(0)
    w, t = torch.randn(64, 48), torch.tensor(0.7)
    monkeypatch.setenv("PINCH_COMPILE", "0")
    cases = [(soft, 0.5, path) for soft in (False, True) for path in ("per_matrix", "fused")]
    eager = [_run_list(w, t, *case) for case in cases]
    monkeypatch.setenv("PINCH_COMPILE", "1")
    for case, ref in zip(cases, eager):
        for a, b in zip(_run_list(w, t, *case, device="cuda"), ref):
            assert torch.allclose(a.cpu(), b, rtol=1e-5, atol=1e-6), case
    assert not any(f.failed for f in FUSED + STACKED), "the compiled path fell back to eager"


def test_failing_compiler_falls_back_to_eager_once(monkeypatch, caplog):
    torch.manual_seed(1)
    w, t = torch.randn(5, 3), torch.tensor(0.6)
    monkeypatch.setenv("PINCH_COMPILE", "0")
    ref = _run(w, t, None, False, 0.5)

    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("no C++ compiler\nsecond line")
        return call

    monkeypatch.setenv("PINCH_COMPILE", "1")
    monkeypatch.setattr(torch, "compile", broken)
    for f in FUSED:
        monkeypatch.setattr(f, "compiled", {})
        monkeypatch.setattr(f, "failed", False)
    with caplog.at_level(logging.WARNING, logger="pinch"):
        first = _run(w, t, None, False, 0.5)
        second = _run(w, t, None, False, 0.5)
    for a, b, c in zip(first, second, ref):
        assert torch.equal(a, c) and torch.equal(b, c)
    warned = [r.getMessage() for r in caplog.records if "torch.compile" in r.getMessage()]
    assert len(warned) == 3 and all("running it eagerly" in m and "no C++ compiler" in m for m in warned)
    assert not any("second line" in m for m in warned)


def test_pinch_compile_setting_is_checked(monkeypatch):
    monkeypatch.setenv("PINCH_COMPILE", "yes")
    with pytest.raises(ValueError, match="PINCH_COMPILE must be 0 or 1, got 'yes'"):
        pinch_weight(torch.ones(2, 2), torch.tensor(0.1), 0.3)


PROBE = """
import sys, torch
from pinch.gates.masking import _masked_and_count
for threads in sys.argv[1:]:  # a process that changes its thread count gets a kernel per count
    torch.set_num_threads(int(threads))
    _masked_and_count([torch.randn(64, 64), torch.randn(32, 128)], [torch.tensor(0.5), torch.tensor(0.4)])
print(sorted(_masked_and_count.compiled))
"""


def test_a_process_gets_a_kernel_for_its_own_thread_count(tmp_path):
    """inductor's disk cache keys a compiled graph by its options, not by the process's threads:
    a kernel compiled for 2 threads ran in the recipe's 1-thread training jobs side by side,
    OpenMP oversubscribed, 1.5-5.7x slower a batch (seen in session 22's sweep). A 1-thread process after a
    2-thread one, on the same cache, compiles a kernel of its own, with no 2-thread region; set to
    2 threads, it takes the 2-thread kernel."""
    import os
    import re
    import subprocess
    import sys

    def kernels():
        return {p: p.read_text() for p in tmp_path.rglob("*.cpp")}

    seen = []
    for threads in (["2"], ["1", "2"]):
        env = dict(os.environ, PINCH_COMPILE="1", TORCHINDUCTOR_CACHE_DIR=str(tmp_path), OMP_NUM_THREADS=threads[0])
        done = subprocess.run([sys.executable, "-c", PROBE, *threads], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.splitlines()[-1] == str(sorted(map(int, threads)))
        seen.append(kernels())
    assert any("num_threads(2)" in text for text in seen[0].values())
    own = set(seen[1]) - set(seen[0])
    assert own and not any(re.search(r"num_threads\(2\)", seen[1][p]) for p in own)
