"""Sparsity-aware self-pinching gates (Xu et al., Interspeech 2025): see shared method.md."""
import dataclasses
import logging

import torch

from pinch.gates import Gate
from pinch.gates.bank import GateBank
from pinch.gates.fused import Fused
from pinch.gates.masking import GATE_PATHS
from pinch.methods.base import PruningMethod
from pinch.methods.options import choice, number
from pinch.schedules import cosine

logger = logging.getLogger(__name__)
ETA_BUFFER = "pinch_eta"
# Adaptive eta: where it starts and its ceiling (the paper's values are ~300-1700 in pinch's
# normalisation, see the class docstring).
ETA_START, ETA_MAX = 1.0, 1e4
# Once the ramp has reached the target, sparsity only dips below it by the few weights one
# update revives; eta grows again only when it falls this far behind (a fraction of gated weights).
HOLD_SLACK = 0.005
# A settled mask's threshold: its square (1e-36) is still a normal fp32 number, so every
# nonzero weight passes it and an exact zero does not; the mask is then the weights' zeros,
# which a checkpoint keeps (a resumed run finds its mask settled by this value).
SETTLED_THRESHOLD = 1e-18


class SelfPinching(PruningMethod):
    """Learned per-matrix thresholds, L0 penalty switched by measured sparsity.

    ``eta`` weighs the *fraction* of gated weights kept (``||Mbar||_0 / N``), so one value
    works for models of any size; the paper's ``eta_paper`` on the raw count over ``N``
    gated weights corresponds to ``eta = eta_paper * N`` (2e-5 on wav2vec2-base's
    ~85M gated weights is eta ~ 1700).

    ``eta="auto"`` (the default) adapts eta instead of fixing it: the penalty also pushes
    every weight toward zero through the soft mask, in proportion to eta, so a fixed eta
    large enough for every loss scale (espnet2's CTC sums over an utterance, NeMo's
    averages) wears down the weights of the task whose loss is small. Auto eta starts at 1
    and doubles over 2% of the run while sparsity is behind a linear ramp reaching the target
    at ``reach_at`` of the run (never lowered), and once the ramp is done only while sparsity
    is more than ``HOLD_SLACK`` behind the target; the value it holds is the paper's eta in
    this normalisation (logged as ``eta``). A number fixes eta, as the paper does.

    Overshoot: after eta switches off, Adam's momentum keeps raising thresholds for many
    steps. Whenever measured sparsity exceeds the target, all thresholds are scaled by one
    common factor, the largest that brings sparsity back to the target (a quantile of
    ``|w| / t`` over all gated weights). Scaling by a common factor keeps the ratios
    between layers' thresholds, which is the learned per-layer allocation.

    ``gate_path`` (auto | fused | per_matrix) chooses how the gate bank runs the gates' math:
    stacked by shape on CUDA, a loop over matrices elsewhere (`pinch.gates.masking`).

    ``settle_at`` (a beyond-the-paper option, 1: never, the paper's rule): from that share of
    the run on, once the target is held, the mask stops moving: the pruned weights become
    exact zeros and stay so after every update, the thresholds drop to `SETTLED_THRESHOLD`,
    and the kept weights fine-tune under a fixed mask. Without it weights near a threshold
    keep reviving and dropping to the end of the run (docs/method.md, "A mask that settles").

    ``group_cost`` (structured only): what the L0 count and the target charge a kept group:
    ``weights``, every weight shrink removes with it (pinch's deviation, docs/structured.md),
    or ``rows``, only the weights its gate sits on (an FFN unit's row, a head's value rows, a
    conv channel's kernel), the count pinch used before. Either way the reported sparsity is
    the share shrink removes, so the two are compared at the size a user ships.

    ``block_gates`` (structured only, beyond the paper): each FFN, attention and conv branch
    also gets a gate of its own on its output matrix, whose groups count only while it is kept
    (`pinch.gates.masking.charged`), so one threshold can remove a whole branch, which shrink
    then cuts to a single zeroed group (docs/structured.md, "Whole blocks").
    """

    name = "sspg"
    options = {
        "eta": number(0, low_open=True, also=("auto",)),
        "tau_start": number(0, low_open=True),
        "tau_end": number(0, low_open=True),
        "reach_at": number(0, 1, low_open=True),
        "weight_grad": choice("hard", "soft"),
        "gate_path": choice(*GATE_PATHS),
        "settle_at": number(0, 1, low_open=True),
        "group_cost": choice("weights", "rows"),
        "block_gates": choice(False, True),
    }

    def __init__(self, targets, target_sparsity, clock, granularity="unstructured",
                 eta="auto", tau_start=0.5, tau_end=0.01, reach_at=0.2, weight_grad="hard",
                 gate_path="auto", settle_at=1.0, group_cost="weights", block_gates=False):
        if group_cost != "weights" and granularity != "structured":
            raise ValueError(f"sspg option group_cost: {group_cost} is for granularity: structured; "
                             "single weights cost themselves")
        if block_gates and granularity != "structured":
            raise ValueError("sspg option block_gates: true is for granularity: structured; "
                             "single weights have no branch to remove")
        self.targets, self.target_sparsity, self.clock = targets, target_sparsity, clock
        self.adaptive = eta == "auto"
        self.tau_start, self.tau_end, self.reach_at = float(tau_start), float(tau_end), float(reach_at)
        self.eta_fixed = None if self.adaptive else float(eta)
        self.soft_weight_grad = weight_grad == "soft"
        self.settle_at = float(settle_at)
        self.settled_masks = None  # the fixed mask once settled, one per gate
        # Structured targets carry their group layout (FFN rows, attention heads) and what a
        # group's removal takes from the model; under group_cost: rows a group counts its own rows.
        by_name = {}  # a block's gate comes before its groups' (`select_structured`)
        for t in targets:
            by_name[t.qualified_name] = Gate(
                t.module, t.param_name, t.layout if group_cost == "weights" else dataclasses.replace(t.layout, cost=0),
                clock=self, bias_name="bias" if t.layout.kind != "element" else None,
                block=by_name[t.block] if t.block else None)
        self.gates = list(by_name.values())
        self.gated = sum(g.numel for g in self.gates)
        self.bank = GateBank(self.gates, lambda: self.tau, self.soft_weight_grad, gate_path or "auto")
        for g in self.gates:
            g.bank = self.bank
        self.eta_on = True
        self.sparsity_now = 0.0
        self.first_reached = None
        if self.adaptive:  # in the model's state, so checkpoints and resume carry it
            device = self.gates[0].weight.device
            clock.model.register_buffer(ETA_BUFFER, torch.tensor(ETA_START, dtype=torch.float64, device=device))

    @property
    def eta(self):
        return float(getattr(self.clock.model, ETA_BUFFER)) if self.adaptive else self.eta_fixed

    @property
    def tau(self):
        return cosine(self.clock.step, self.clock.total_steps, self.tau_start, self.tau_end)

    def start(self):
        if all(float(g.threshold.detach()) == _settled(g.threshold) for g in self.gates):
            self._remember_masks()  # resumed after the mask settled
        self._settle(self._kept())

    def penalty(self):
        if not self.eta_on:
            return torch.zeros((), device=self.gates[0].weight.device)
        kept = self.bank.kept()
        # The adaptive eta stays a tensor on the model's device: reading it would sync a GPU.
        eta = getattr(self.clock.model, ETA_BUFFER).to(kept.dtype) if self.adaptive else self.eta_fixed
        return eta * kept / self.gated

    def after_step(self):
        self.bank.clear()  # the forward's masks are pre-update: measure the weights now
        if self.settled_masks is not None:
            self._hold()
        thresholds = torch.stack([g.threshold.detach() for g in self.gates])
        # One device-to-host read per step: the finiteness check and the kept count together.
        finite, kept = torch.stack([torch.isfinite(thresholds).all().long(), self._kept_tensor()]).tolist()
        if not finite:
            # gates are built from targets in order
            target, value = next((t, v) for t, v in zip(self.targets, thresholds) if not torch.isfinite(v))
            raise FloatingPointError(
                f"threshold {target.qualified_name}_threshold became {float(value)} at step {self.clock.step}: "
                "the loss or its gradients are not finite"
            )
        self._settle(kept)
        if self.adaptive and self.eta_on:
            self._adapt_eta()
        if (self.settled_masks is None and self.settle_at < 1 and not self.eta_on
                and self.clock.step >= self.settle_at * self.clock.total_steps):
            self._settle_mask()

    @torch.no_grad()
    def _settle_mask(self):
        """Fix the mask as it is (see ``settle_at``)."""
        for g in self.gates:
            g.weight.mul_(g.keep_mask())
            g.threshold.fill_(_settled(g.threshold))
        self._remember_masks()
        self.bank.clear()
        logger.info("pinch sspg: mask settled at update %d of %d (sparsity %.4f)", self.clock.step,
                    self.clock.total_steps, self.sparsity_now)

    def _remember_masks(self):
        self.settled_masks = [g.keep_mask() for g in self.gates]

    @torch.no_grad()
    def _hold(self):
        """Undo what the update did to the settled mask: the optimizer's momentum moves pruned
        weights off zero (and thresholds off their settled value) for a while after their
        gradients stop."""
        settled = _settled(self.gates[0].threshold)  # thresholds share the weights' dtype
        for g, keep in zip(self.gates, self.settled_masks):
            g.weight.mul_(keep)
            g.threshold.fill_(settled)

    def _adapt_eta(self):
        """Double eta over 2% of the run while sparsity is behind a linear ramp that reaches the
        target at ``reach_at`` of the run, and never lower it: eta grows only as far as the ramp
        needs, whatever the task loss's scale. (Lowering it when ahead made sparsity swing:
        measured in the ESPnet recipe, eta fell to 0.005 and sparsity from 0.54 back to 0.46.)
        After the ramp, the dips of a few revived weights below the target do not count: with
        them eta kept doubling to the end of the run (ESPnet recipe at 65%: 50 when the target
        was reached, 798 at the end; at 80%: 147 and 8659) for no sparsity, only a stronger
        pull on every weight (docs/method.md: the gate A/B on corpus v4)."""
        total = self.clock.total_steps
        ramp = min(1.0, self.clock.step / max(self.reach_at * total, 1.0))
        slack = HOLD_SLACK if ramp >= 1.0 else 0.0
        if self.sparsity_now < self.target_sparsity * ramp - slack:
            eta = getattr(self.clock.model, ETA_BUFFER)
            eta.mul_(2.0 ** (1.0 / max(1.0, 0.02 * total))).clamp_(max=ETA_MAX)

    @torch.no_grad()
    def _settle(self, kept):
        # Counts, not fractions: "reached" must hold exactly after a projection onto the target.
        allowed = self.gated - int(round(self.target_sparsity * self.gated))
        if kept < allowed:
            self._project()
            kept = self._kept()
        self.eta_on = kept > allowed
        self.sparsity_now = 1.0 - kept / self.gated
        if self.first_reached is None and not self.eta_on and self.clock.step > 0:
            self.first_reached = self.clock.step  # of this process: a resumed run logs it again
            logger.info("pinch sspg: sparsity %.4f reached the target %.4f at update %d of %d (eta %.3g)",
                        self.sparsity_now, self.target_sparsity, self.clock.step, self.clock.total_steps, self.eta)

    def _kept_tensor(self):
        return self.bank.kept_count()

    def _kept(self):
        return int(self._kept_tensor())

    def measured_sparsity(self):
        return self.sparsity_now

    def _project(self):
        """Scale every threshold by one factor so that sparsity equals the target. Block gates
        (``block_gates``) keep their thresholds, and so which branches are removed, while the
        finer groups can meet the target; where only reviving branches can, the branches the
        common factor would revive are revived, and the finer groups scaled on top of them."""
        groups = [g.weight.detach().reshape(g.groups, -1) for g in self.gates]
        costs, blocks = [g.cost for g in self.gates], self.bank.blocks
        before = [g.threshold.detach().clone() for g in self.gates]
        self._scale(common_threshold_scale(groups, before, self.target_sparsity, costs, blocks, True), blocks=False)
        if blocks is None or self._kept() >= self.gated - int(round(self.target_sparsity * self.gated)):
            return
        for g, t in zip(self.gates, before):
            g.threshold.copy_(t)
        self._scale(common_threshold_scale(groups, before, self.target_sparsity, costs, blocks), blocks=True)
        self._scale(common_threshold_scale(groups, [g.threshold.detach() for g in self.gates], self.target_sparsity,
                                           costs, blocks, True), blocks=False)

    def _scale(self, factor, blocks):
        """Lower the block gates' thresholds (``blocks``) or the others' by ``factor`` (< 1 only)."""
        if factor < 1:
            for g in self.gates:
                if (g.layout.kind == "block") == blocks:
                    g.threshold.mul_(factor)

    def keep_masks(self):
        for g, t in zip(self.gates, self.targets):
            yield t.qualified_name, g.keep_mask()

    def stats(self):
        stats = {"eta": self.eta if self.eta_on else 0.0, "tau": self.tau}
        if self.settle_at < 1:
            stats["settled"] = float(self.settled_masks is not None)
        return stats

    def finish(self):
        self.bank.clear()
        for g in self.gates:
            g.remove(apply_mask=True)


def _settled(threshold):
    """`SETTLED_THRESHOLD` as the threshold's dtype holds it."""
    return float(torch.tensor(SETTLED_THRESHOLD, dtype=threshold.dtype))


def common_threshold_scale(groups, thresholds, sparsity, costs=None, blocks=None, keep_blocks=False):
    """The factor ``a`` for which thresholds ``a * t`` prune exactly ``sparsity`` of the weights
    (at most that share, as close as whole groups allow).

    ``groups`` are the gated weights viewed as ``(groups, group_size)``; a group is pruned
    when its RMS falls below its tensor's threshold, i.e. when ``rms / |t| < a``. ``costs``:
    the weights each tensor's pruned group removes (default: the group's size); ``blocks``:
    per tensor, the position of its block's one-group tensor (-1: none), whose pruning removes
    the tensor's groups with it. With ``keep_blocks`` a block's threshold is not scaled: it stays
    pruned or kept as it is, and the factor moves the finer groups only (scaling it too, a whole
    branch revived at once left sparsity up to a tenth of the weights under the target in the
    ESPnet recipe, docs/structured.md "Whole blocks").
    """
    costs = costs or [w.shape[1] for w in groups]
    if all(c == 1 for c in costs):
        total = sum(w.shape[0] for w in groups)
        return _kth_ratio(groups, thresholds, min(int(round(sparsity * total)) + 1, total))
    ratios = torch.cat([w.square().mean(dim=1).sqrt() / t.abs().clamp_min(1e-12) for w, t in zip(groups, thresholds)])
    sizes = torch.cat([torch.full((w.shape[0],), c, dtype=torch.long, device=ratios.device)
                       for w, c in zip(groups, costs)])
    counts = torch.tensor([w.shape[0] for w in groups], device=ratios.device)
    firsts = torch.cumsum(counts, 0) - counts
    blocks = torch.full_like(counts, -1) if blocks is None else torch.as_tensor(blocks, device=ratios.device)
    block_group = torch.repeat_interleave(torch.where(blocks >= 0, firsts[blocks.clamp_min(0)], -1), counts)
    is_block = torch.zeros_like(ratios, dtype=torch.bool)
    if keep_blocks:
        is_block[firsts[blocks[blocks >= 0]]] = True
    block_cut = is_block & (ratios < 1)  # each kept block as its threshold has it now

    def pruned(a):
        cut = torch.where(is_block, block_cut, ratios < a)
        return int(((cut | (cut[block_group.clamp_min(0)] & (block_group >= 0))) * sizes).sum())

    prune = int(round(sparsity * int(sizes.sum())))
    # sorted; equal ratios are pruned or kept together
    candidates, position = torch.unique(ratios[~is_block], return_inverse=True)
    if bool((block_group < 0).all()):  # no blocks: the count below every candidate in one pass
        below = torch.zeros_like(candidates, dtype=sizes.dtype).index_add_(0, position, sizes)
        lo = int(torch.searchsorted(torch.cumsum(below, 0) - below, prune, right=True)) - 1
    else:
        lo, hi = 0, len(candidates) - 1  # below the smallest ratio lie only the groups of blocks kept pruned
        while lo < hi:  # the largest candidate pruning at most the target: pruned() grows with a
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if pruned(candidates[mid]) <= prune else (lo, mid - 1)
    # Halfway to the ratio below: at the candidate itself its group would sit on its threshold,
    # where eager and compiled sums of squares round apart (a whole branch, with block gates).
    return (candidates[lo - 1] + candidates[lo]) / 2 if lo > 0 else candidates[0] / 2


def _window(w, t, lo, hi):
    """``|w| / |t|`` and where it lies in ``[lo, hi)`` (compared without dividing)."""
    a, t = w.abs(), t.abs().clamp_min(1e-12)
    return a / t, (a >= lo * t) & (a < hi * t)


@Fused
def _in_window(weights, thresholds, lo, hi):
    """How many weights have ``lo <= |w| / |t| < hi``, over all tensors in one call."""
    return sum(_window(w, t, lo, hi)[1].sum() for w, t in zip(weights, thresholds))


def _kth_ratio(weights, thresholds, k):
    """The k-th smallest ``|w| / |t|`` over all weights, without sorting them all.

    Near the target the answer lies close to 1 (1 is where the current thresholds cut), so
    a window around 1 widens (x8) until it holds the k-th ratio, counted in one fused pass
    per width, and only the ratios inside it are sorted: on wav2vec2-base's 85M gated
    weights a ``kthvalue`` over all of them took seconds per projection.
    """
    def count(lo, hi):
        lo, hi = (torch.tensor(v, dtype=weights[0].dtype, device=weights[0].device) for v in (lo, hi))
        return int(_in_window(weights, thresholds, lo, hi))

    below, width = count(0.0, 1.0), 1e-3
    while True:
        if k <= below:  # the answer is below 1: widen downwards
            lo, hi = max(0.0, 1.0 - width), 1.0
            inside = count(lo, hi)
            before = below - inside
        else:
            lo, hi = 1.0, (1.0 + width if width < 1e6 else float("inf"))
            inside, before = count(lo, hi), below
        if before < k <= before + inside:
            break
        width *= 8
    inside_ratios = [ratio[mask] for ratio, mask in (_window(w, t, lo, hi) for w, t in zip(weights, thresholds))]
    return torch.kthvalue(torch.cat(inside_ratios), k - before).values
