"""python -m pinch.jobs local|slurm [--OPTION VALUE ...] [JOB=1:N] LOG COMMAND..."""
import sys

from . import local, slurm
from .array import JobError, parse_command_line
from .progress import say

BACKENDS = {"local": local, "slurm": slurm}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in BACKENDS:
        say(f"usage: python -m pinch.jobs {{{'|'.join(BACKENDS)}}} [--option value ...] [JOB=1:N] LOG COMMAND...")
        return 2
    try:
        return BACKENDS[argv[0]].run(parse_command_line(argv[1:]))
    except JobError as err:
        say(f"error: {err}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
