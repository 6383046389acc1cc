"""Output directories that appear complete or not at all.

Why: an interrupted run must never leave a half-written data directory that a rerun
(or a recipe stage) trusts. Everything is written in a hidden sibling and renamed.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path


OWNER = ".pinch-owner"  # "host pid" of the process writing a temporary directory


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
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
