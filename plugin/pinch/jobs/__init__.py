"""Recipe jobs on this machine or on a Slurm cluster.

The recipes call their jobs through ``cmd.sh`` (``train_cmd``, ``decode_cmd``, ``cuda_cmd``) with
the command line of Kaldi's ``run.pl`` and ``slurm.pl``, which ESPnet users know and no package
ships: ``python -m pinch.jobs local|slurm [--OPTION VALUE ...] [JOB=1:N] LOG COMMAND...``.
"""
from .array import JobArray, JobError, parse_command_line

__all__ = ["JobArray", "JobError", "parse_command_line"]
