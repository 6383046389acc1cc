"""The local backend (run.pl's role): the jobs run on this machine, --max_jobs_run at a time."""
import os
import signal
import subprocess
import time
from pathlib import Path

from .array import JobError, exit_code_in_log, positive_option
from .progress import Progress, say

IGNORED = {"gpu", "mem", "time", "config"}  # a cluster's limits; this machine has its own
ONE_PROCESS = {"num_nodes", "nproc_per_node"}  # data-parallel jobs: srun's tasks, on Slurm only


def run(jobs, poll_s=0.2):
    """Runs every job; the cores are shared out as torch threads (OMP_NUM_THREADS) when several
    run at once, unless --num_threads says how many each takes. Returns the exit status."""
    unknown = set(jobs.options) - IGNORED - ONE_PROCESS - {"max_jobs_run", "num_threads"}
    if unknown:
        raise JobError(f"the local backend has no option --{sorted(unknown)[0]}")
    for name in sorted(ONE_PROCESS & set(jobs.options)):
        if positive_option(jobs.options[name], name) > 1:
            raise JobError(f"--{name} {jobs.options[name]}: the local backend runs each job as one process on "
                           "this machine; data-parallel jobs need the slurm backend")
    at_once = positive_option(jobs.options.get("max_jobs_run", len(jobs.ids)), "max_jobs_run")
    threads = jobs.options.get("num_threads")
    if threads is not None:
        threads = positive_option(threads, "num_threads")
    elif at_once > 1 and len(jobs.ids) > 1:
        threads = max(1, (os.cpu_count() or 1) // at_once)
    script = jobs.write_script(threads)
    progress, pending, running = Progress(jobs), list(jobs.ids), {}

    def stop(signum, _frame):
        for proc in running.values():
            _kill_tree(proc.pid, signal.SIGTERM)
        say(f"{jobs.name}: stopped by signal {signum}; {len(running)} running jobs killed")
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending or running:
            while pending and len(running) < at_once:
                job = pending.pop(0)
                Path(jobs.log_of(job)).unlink(missing_ok=True)
                # In the caller's process group: whatever kills the recipe's group kills its jobs.
                running[job] = subprocess.Popen(["bash", str(script), str(job)])
                if len(jobs.ids) > 1:
                    progress.started(job)
            time.sleep(poll_s)
            for job, proc in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[job]
                code = exit_code_in_log(jobs.log_of(job))
                code = proc.returncode if code is None else code
                progress.ended(job, None if code == 0 else f"exit code {code}")
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return progress.outcome()


def _kill_tree(pid, sig):
    """Signals PID and every process under it (a job's bash and what it runs)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        _kill_tree(int(child), sig)
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
