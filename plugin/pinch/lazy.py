"""Package names that load on first use (PEP 562).

A package's ``__init__`` that imports every submodule makes each command pay for all of
them: ``python -m pinch.scoring`` imported torch and pyroomacoustics (3.4-5.2 s beside a
training run, against 0.2-0.4 s now) to run sclite. Packages map their public names to
the submodules that define them instead.
"""
import importlib


def lazy_exports(namespace, exports):
    """``(__getattr__, __dir__)`` for the package whose globals are ``namespace``."""

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], namespace["__name__"]), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
