"""The Slurm backend (slurm.pl's role): the jobs go to sbatch as one job array, throttled to
--max_jobs_run at a time; the launcher waits, and names each job that failed or that Slurm
killed (time or memory limit) with its log. It never runs a job locally instead."""
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .array import JobError, exit_code_in_log, positive_option
from .progress import Progress, say
from .slurm_conf import SlurmConf, partition_of

ENDED_BY_SLURM = {
    "TIMEOUT": "killed by Slurm at its time limit",
    "OUT_OF_MEMORY": "killed by Slurm: over its memory limit",
    "CANCELLED": "cancelled (scancel, or by the scheduler)",
    "NODE_FAIL": "ended by Slurm: its node failed",
    "BOOT_FAIL": "ended by Slurm: its node failed to boot",
    "PREEMPTED": "ended by Slurm: preempted",
    "DEADLINE": "ended by Slurm: past its deadline",
}
TERMINAL = {"COMPLETED", "FAILED", *ENDED_BY_SLURM}


def run(jobs, poll_s=1.0):
    """Submits, waits and returns the exit status (0: every job succeeded)."""
    options = dict(jobs.options)
    conf = SlurmConf.read(options.pop("config", None))
    at_once = positive_option(options.pop("max_jobs_run", len(jobs.ids)), "max_jobs_run")
    args = conf.sbatch_args(options)
    for tool in (args[0], "sinfo", "scontrol", "scancel"):
        if shutil.which(tool) is None:
            raise JobError(f"the slurm backend needs '{tool}', which is not on PATH: Slurm's client commands "
                           "are not installed here (cmd_backend=local runs the jobs on this machine)")
    partitions = _partitions()
    partition = partition_of(args)
    if partition is not None and partition not in partitions:
        raise JobError(f"Slurm partition '{partition}' does not exist (the cluster has: {', '.join(partitions)}; "
                       f"set it in {conf.source})")
    if "%" in jobs.log:
        raise JobError(f"log {jobs.log}: '%' is a Slurm file name pattern; name the log without it")
    script = jobs.write_script()
    _refuse_if_still_queued(jobs, script.with_suffix(".slurm_job"))
    for job in jobs.ids:
        Path(jobs.log_of(job)).unlink(missing_ok=True)
    submit = args + ["--parsable", f"--array={jobs.first}-{jobs.last}%{at_once}", f"--job-name={jobs.name}",
                     f"--output={jobs.log.replace(jobs.var, '%a')}", "--open-mode=append", str(script)]
    done = subprocess.run(submit, capture_output=True, text=True)
    if done.returncode != 0:
        raise JobError(f"sbatch refused the jobs {jobs.name}: {_last(done.stderr)} (command: {' '.join(submit)})")
    job_id = done.stdout.strip().split(";")[0]
    script.with_suffix(".slurm_job").write_text(job_id + "\n")
    return _wait(jobs, job_id, at_once, poll_s)


def _refuse_if_still_queued(jobs, record):
    """A recipe killed while it waited leaves its jobs in Slurm: submitting them again would run
    two of each into the same folders."""
    if not record.exists():
        return
    job_id = record.read_text().strip()
    queued = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i %T"], capture_output=True, text=True).stdout
    if queued.strip():
        raise JobError(f"the {jobs.name} jobs of an earlier submission are still in Slurm (job {job_id}: "
                       f"{queued.split()[1].lower()}): wait for them to end, or scancel {job_id}, then rerun")


def _wait(jobs, job_id, at_once, poll_s):
    progress, seen = Progress(jobs), set()

    def cancel(signum, _frame):
        subprocess.run(["scancel", job_id], capture_output=True)
        say(f"{jobs.name}: stopped by signal {signum}; Slurm job {job_id} cancelled")
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, cancel) for s in (signal.SIGINT, signal.SIGTERM)}
    # Said once a stop would cancel the jobs (a caller may stop the launcher on reading it).
    say(f"{jobs.name}: {len(jobs.ids)} jobs submitted as Slurm job {job_id} ({at_once} at a time)")
    try:
        while True:
            tasks = _tasks(job_id)
            if tasks is None:  # Slurm no longer knows the job (MinJobAge): the logs tell the rest
                break
            for job, (state, exit_code, reason) in sorted(tasks.items()):
                if job not in seen and state in TERMINAL:
                    seen.add(job)
                    progress.ended(job, _why(state, exit_code, reason, jobs.log_of(job)))
            if len(seen) == len(jobs.ids):
                break
            time.sleep(poll_s)
        for job in jobs.ids:
            if job not in seen:
                code = exit_code_in_log(jobs.log_of(job))
                progress.ended(job, None if code == 0 else f"exit code {code}" if code is not None
                               else "no exit code in its log, and Slurm no longer knows the job (killed?)")
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return progress.outcome()


def _tasks(job_id):
    """{task: (state, exit code, reason)} of the array's tasks that Slurm lists one by one
    (pending ones it lists as a range); None when Slurm no longer knows the job."""
    done = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True)
    if done.returncode != 0:
        if "Invalid job id" in done.stderr:
            return None
        raise JobError(f"scontrol cannot show Slurm job {job_id}: {_last(done.stderr)}")
    tasks = {}
    for line in done.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        task = fields.get("ArrayTaskId", "")
        if task.isdigit():
            tasks[int(task)] = (fields.get("JobState", ""), fields.get("ExitCode", "0:0"), fields.get("Reason", ""))
    return tasks


def _why(state, exit_code, reason, log):
    """None for a job that succeeded, else what ended it."""
    code = exit_code_in_log(log)
    if state in ENDED_BY_SLURM:
        return f"{ENDED_BY_SLURM[state]} (Slurm state {state}, reason {reason})"
    if code is None:
        code = int(exit_code.split(":")[0] or 0)
    return None if state == "COMPLETED" and code == 0 else f"exit code {code}"


def _partitions():
    """The cluster's partitions; a clear error when no controller answers."""
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise JobError("no Slurm controller answers: sinfo timed out after 60 s") from None
    if done.returncode != 0:
        raise JobError(f"no Slurm controller answers: sinfo: {_last(done.stderr)}")
    return sorted(set(done.stdout.split()))


def _last(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
