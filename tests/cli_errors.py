"""A command that refuses its input: a non-zero exit, one line on stderr, no traceback, and
every file it was given left as it was."""
from pathlib import Path


def snapshot(*paths) -> dict:
    """path -> bytes of each file (None: absent), to compare after the command."""
    return {str(p): Path(p).read_bytes() if Path(p).is_file() else None for p in paths}


def one_line_error(main, argv, capsys) -> str:
    """Run ``main(argv)`` (a CLI's entry point); assert it failed with exactly one stderr line and
    no traceback; return that line."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc not in (0, None), f"rc {rc}, stderr {err!r}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]
