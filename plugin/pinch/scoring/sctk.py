"""Locating and running the NIST SCTK tools (Debian `sctk` installs to /usr/lib/sctk/bin)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCTK_DIRS = ("/usr/lib/sctk/bin", "/usr/local/sctk/bin")


def sctk_tool(name: str) -> str:
    """Absolute path of an SCTK program (PATH, $SCTK_BIN, then the Debian location)."""
    for d in [os.environ.get("SCTK_BIN", "")] + list(SCTK_DIRS):
        if d and (Path(d) / name).is_file():
            return str(Path(d) / name)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"SCTK program {name!r} not found (looked in $SCTK_BIN, "
                       f"{', '.join(SCTK_DIRS)} and PATH); install it with "
                       f"`sudo apt-get install sctk`")


def run_sctk(args: list[str], stdin: bytes | None = None, cwd: Path | None = None) -> str:
    """Run an SCTK program; a non-zero exit raises with its output."""
    proc = subprocess.run([sctk_tool(args[0])] + args[1:], input=stdin, cwd=cwd,
                          capture_output=True)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode(errors="replace").strip()[-1000:]
        raise RuntimeError(f"{args[0]} failed (exit {proc.returncode}): {out}")
    return proc.stdout.decode(errors="replace")
