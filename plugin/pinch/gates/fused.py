"""The gate's elementwise math through torch.compile, with eager PyTorch as the fallback.

Eager, the gate's forward and backward are about a dozen passes over every gated weight
(square, compare, sigmoid, slope, products, where), each allocating a tensor. Compiled
(dynamic shapes, so one graph serves a model's whole list of matrices), the same work is one
loop per matrix: on the recipe Conformer's 2.9M gated weights, 10.9 ms a step against 43.5 ms
eager (bench/gate_overhead.py, one thread). Compiling costs seconds once per process
(inductor caches kernels on disk), so it pays for training, not for a single forward.

``PINCH_COMPILE=0`` turns it off (the test suite does, except where it compares the two);
a compile that fails (no C++ compiler, an unsupported device) warns once and runs eagerly.
"""
import logging
import os

import torch

logger = logging.getLogger("pinch")


def compile_enabled():
    value = os.environ.get("PINCH_COMPILE", "1")
    if value not in ("0", "1"):
        raise ValueError(f"PINCH_COMPILE must be 0 or 1, got {value!r}")
    return value == "1"


class Fused:
    """Call ``fn`` compiled when compiling is on and has not failed, else eagerly."""

    def __init__(self, fn):
        self.fn, self.compiled, self.failed = fn, {}, False  # compiled: by torch thread count
        self.__name__ = fn.__name__

    def __call__(self, *args):
        if self.failed or not compile_enabled():
            return self.fn(*args)
        threads = torch.get_num_threads()
        if threads not in self.compiled:
            # A CPU kernel runs the thread count it was compiled for, so it is one per count, and
            # the count is an option: inductor's disk cache keys options, not the process's
            # threads, and handed a kernel compiled for 2 threads to 1-thread training jobs
            # running side by side (OpenMP oversubscribed: sspg batches 1.5-5.7x slower).
            self.compiled[threads] = torch.compile(self.fn, dynamic=True, options={"cpp.threads": threads})
        try:
            return self.compiled[threads](*args)
        except Exception as err:  # noqa: BLE001 -- any compiler failure: the eager math is the same
            self.failed = True
            logger.warning("pinch: torch.compile of the gate's %s failed (%s: %s); running it eagerly",
                           self.__name__, type(err).__name__, str(err).splitlines()[0] if str(err) else "")
            return self.fn(*args)
