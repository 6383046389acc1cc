"""Outputs that appear complete or not at all, never replace an input, and hold no NaN.

Why: an interrupted run must never leave a half-written data directory that a rerun
(or a recipe stage) trusts. Everything is written in a hidden sibling and renamed. A
mistyped path must not turn an input or the append-only results table into a report
(``check_outputs``), and a NaN written as a result would be read back as one.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path


OWNER = ".pinch-owner"  # "host pid" of the process writing a temporary directory
# The files of a results table: only pinch.scoring.results.append_result writes them.
RESULTS_TABLE = ("results.json", "results.md")


def _remove_stale_temporaries(final: Path) -> None:
    """Remove temporaries of `final` left by a killed process of this host: a SIGKILL
    skips every cleanup, and a corpus-sized leftover would stay behind for good. A
    temporary of a live process (a concurrent run) or of another host is left alone."""
    host = socket.gethostname()
    for tmp in final.parent.glob(f".{final.name}.tmp-*"):
        try:
            owner_host, pid = (tmp / OWNER).read_text().split()
            if owner_host != host:
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except (OSError, ValueError):  # no owner yet (being created) or not ours to judge
            continue


@contextmanager
def atomic_output_dir(final: Path):
    """Yield a temporary sibling of `final`; on success it replaces `final`.

    On error the temporary directory is removed and `final` is left untouched; one left
    by a killed run is removed by the next.
    """
    final = Path(final).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    (tmp / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / OWNER).unlink()
    os.chmod(tmp, 0o755)
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.rename(final, old / final.name)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(path: Path):
    """Yield a temporary sibling of `path` (same suffix, for writers that go by it); on
    success it replaces `path`, so readers never see a partial file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: no directory {path.parent} to write it in")
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, obj) -> None:
    """Write `obj` as JSON; a NaN or infinity is refused (naming its field), not written."""
    found = non_finite(obj)
    if found:
        raise ValueError(f"{path}: {found[0]} is {found[1]}: refusing to write a non-finite number")
    write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def non_finite(obj, field: str = "") -> tuple[str, float] | None:
    """(field, value) of the first NaN or infinity in nested dicts and lists, the field
    written like "wer['test']"; None if every number is finite."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return field or "value", obj
    if isinstance(obj, dict):
        items = ((f"{field}[{k!r}]" if field else str(k), v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{field}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    for name, value in items:
        found = non_finite(value, name)
        if found:
            return found
    return None


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: through symlinks, and hard links where both exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one is missing: compare where they would resolve to
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs: dict[str, Path], inputs: dict[str, Path] | None = None) -> None:
    """Raise ValueError, before anything is written, when an output is (or is a directory
    holding) an input of the same command, when two outputs are one file, or when an
    output is a file of a results table. Keys name the paths in the message (``--bad``)."""
    inputs = inputs or {}
    for name, out in outputs.items():
        real = Path(os.path.realpath(out))
        if real.name in RESULTS_TABLE and any((real.parent / f).exists() for f in RESULTS_TABLE):
            raise ValueError(f"{out}: {name} is a file of the results table in {real.parent}, which "
                             f"only grows by append-result: choose another path")
        for in_name, inp in inputs.items():
            if _same_file(out, inp) or Path(os.path.realpath(inp)).is_relative_to(real):
                raise ValueError(f"{out}: {name} would overwrite {in_name} {inp}: choose another path")
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if _same_file(outputs[a], outputs[b]):
                raise ValueError(f"{outputs[b]}: {a} and {b} are the same file: give each its own path")
