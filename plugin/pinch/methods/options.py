"""Typed method options: a config value of the wrong type is an error naming its key.

Each method declares ``options = {name: check}``; ``PruningConfig`` runs the checks, so a
preset file with ``eta: "lots"`` fails at load time with one line, not inside training.
"""
import math


def number(low=None, high=None, low_open=False, integer=False, also=()):
    """A finite int/float (never a bool) in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def check(key, value):
        if value in also and isinstance(value, str):
            return value
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (not integer or float(value).is_integer())
        ok = ok and (low is None or (value > low if low_open else value >= low)) and (high is None or value <= high)
        if not ok:
            kind = "an integer" if integer else "a number"
            bounds = f" in {'(' if low_open else '['}{low}, {high}]" if high is not None else (
                f" {'>' if low_open else '>='} {low}" if low is not None else "")
            extra = "".join(f" or {a!r}" for a in also)
            raise ValueError(f"pruning key {key!r} must be {kind}{bounds}{extra}, got {value!r}")
        return int(value) if integer else value

    return check


def choice(*values):
    """One of ``values``; None means the method's default."""

    def check(key, value):
        if value is not None and value not in values:
            raise ValueError(f"pruning key {key!r} must be one of {list(values)}, got {value!r}")
        return value

    return check


def validate(options, values):
    """``values`` checked against the method's ``options`` (unknown keys are the caller's)."""
    return {k: options[k](k, v) for k, v in values.items()}
