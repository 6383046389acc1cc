"""Step-indexed schedules shared by the pruning methods."""
import math

from torch.ao.pruning.scheduler.cubic_scheduler import CubicSL


def cosine(step, total_steps, start, end):
    """Cosine annealing from ``start`` to ``end`` over ``total_steps``, then flat."""
    frac = min(max(step, 0) / max(total_steps, 1), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * frac))


def cubic_sparsity(step, target, begin, end, frequency):
    """Zhu & Gupta's gradual schedule, as torch.ao.pruning's CubicSL computes it."""
    if step < begin:
        return 0.0
    events = max(math.ceil((end - begin) / frequency), 1)
    # Sparsity only changes on pruning events: evaluate at the last event reached.
    event_step = begin + min((step - begin) // frequency, events) * frequency
    return CubicSL.sparsity_compute_fn(0.0, target, event_step, begin, frequency, events)
