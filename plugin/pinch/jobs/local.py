"""The local backend (run.pl's role): the jobs run on this machine, --max_jobs_run at a time (by
default one per core).

A job's status is its bash's exit status, never a line of its log (the command may print one).
Each job runs in a session of its own (a Ctrl-C or a kill of the recipe's process group reaches
the launcher, which stops them), and the jobs die with the launcher however it ends: each job's
bash has as stdin a pipe that only the launcher holds open for writing, and a background reader
of it kills the job's process group when the pipe ends, which the kernel does when the launcher
dies, SIGKILL included (no polling, no pid that could be reused; PR_SET_PDEATHSIG would reach the
job's bash but not what it runs). q/NAME.local_jobs names the launcher and its running jobs (host,
pid, start time): a rerun refuses while any of them, or any process left in a job's session (one
that left the job's process group), still runs."""
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections import deque
from pathlib import Path

from .array import JobError, positive_option
from .progress import Progress, say

IGNORED = {"gpu", "mem", "time", "config"}  # a cluster's limits; this machine has its own
ONE_PROCESS = {"num_nodes", "nproc_per_node"}  # data-parallel jobs: srun's tasks, on Slurm only
GRACE_S = 5  # a stopped launcher's jobs get this long to end on SIGTERM before SIGKILL


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
    cores = len(os.sched_getaffinity(0))  # those this launcher may use (taskset, a Slurm allocation)
    at_once = positive_option(jobs.options.get("max_jobs_run", cores), "max_jobs_run")
    threads = jobs.options.get("num_threads")
    if threads is not None:
        threads = positive_option(threads, "num_threads")
    elif min(at_once, len(jobs.ids)) > 1:
        threads = max(1, cores // min(at_once, len(jobs.ids)))
    record = jobs.qdir / f"{jobs.name}.local_jobs"
    _refuse_if_still_running(jobs, record)  # before the script is rewritten under its jobs' bash
    script = jobs.write_script(threads)
    progress, pending, running = Progress(jobs), deque(jobs.ids), {}
    jobs_stdin, lifeline = os.pipe()  # only this process holds lifeline: the pipe ends with it

    def stop(signum, _frame):
        for s in old:  # a second signal ends the launcher at once; its jobs die with it
            signal.signal(s, signal.SIG_DFL)
        # What the jobs run first: each job's bash then logs the command's end, as run.pl's do.
        _signal_sessions({proc.pid for proc, _ in running.values()}, signal.SIGTERM, leaders=False)
        deadline = time.monotonic() + GRACE_S
        while any(proc.poll() is None for proc, _ in running.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_sessions({proc.pid for proc, _ in running.values()}, signal.SIGKILL)
        record.unlink(missing_ok=True)
        say(f"{jobs.name}: stopped by signal {signum}; {len(running)} running jobs killed")
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _write_record(record, jobs, running)
        while pending or running:
            if pending and len(running) < at_once:
                for job in [pending.popleft() for _ in range(min(len(pending), at_once - len(running)))]:
                    Path(jobs.log_of(job)).unlink(missing_ok=True)
                    proc = subprocess.Popen(["bash", str(script), str(job), "local"], stdin=jobs_stdin,
                                            start_new_session=True)
                    running[job] = (proc, _start_time(proc.pid))
                    if len(jobs.ids) > 1:
                        progress.started(job)
                _write_record(record, jobs, running)
            time.sleep(poll_s)
            for job, (proc, _) in list(running.items()):
                if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                    continue
                # Its bash ended but is not reaped yet, so its process group cannot be another's:
                # what the job left there (the pipe's reader, its own background work) ends too.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
                del running[job]
                progress.ended(job, None if code == 0 else f"exit code {code}" if code > 0
                               else f"killed by signal {-code} ({signal.strsignal(-code)})")
        record.unlink(missing_ok=True)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        os.close(jobs_stdin)
        os.close(lifeline)
    return progress.outcome()


def _refuse_if_still_running(jobs, record):
    """A launcher SIGKILLed while its jobs ran leaves q/NAME.local_jobs: rerunning beside any of
    them, or beside a launcher still running, would run two of each into the same folders."""
    if not record.exists():
        return
    processes, survivors = _processes(), []
    for line in record.read_text().splitlines():
        host, pid, start, what = line.split()
        pid = int(pid)
        if host != socket.gethostname():
            raise JobError(f"the {jobs.name} jobs of an earlier run were started on {host}, not here: if none "
                           f"still runs there, delete {record}, then rerun")
        if what == "launcher":
            if processes.get(pid, (None, None))[1] == start:
                raise JobError(f"the {jobs.name} jobs are being run by another launcher (pid {pid}): wait for it "
                               f"to end, or kill {pid}, then rerun")
        elif processes.get(pid, (pid, start))[1] == start:  # else the pid is another's now: the job ended
            left = sorted(p for p, (session, _) in processes.items() if session == pid)
            survivors += [(what, left)] if left else []
    if survivors:
        named = "; ".join(f"{what}: pid {' '.join(map(str, pids))}" for what, pids in survivors)
        every = " ".join(str(p) for _, pids in survivors for p in pids)
        raise JobError(f"the {jobs.name} jobs of an earlier run still run on this machine ({named}): wait for "
                       f"them to end, or kill {every}, then rerun")


def _write_record(record, jobs, running):
    """q/NAME.local_jobs: this launcher and its running jobs (each its session's leader)."""
    lines = [f"{os.getpid()} {_start_time(os.getpid())} launcher"]
    lines += [f"{proc.pid} {start} {jobs.var}={job}" for job, (proc, start) in running.items()]
    host = socket.gethostname()
    partial = record.with_suffix(".partial")
    partial.write_text("".join(f"{host} {line}\n" for line in lines))
    partial.replace(record)


def _processes():
    """{pid: (session, start time)} of the processes that run on this machine (zombies are over)."""
    found = {}
    for entry in os.scandir("/proc"):
        stat = _stat(entry.name) if entry.name.isdigit() else None
        if stat is not None and stat[0] != "Z":
            found[int(entry.name)] = (int(stat[3]), stat[19])
    return found


def _stat(pid):
    """/proc/PID/stat's fields after the command's name (state, ppid, pgrp, session, ...), or None."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _start_time(pid):
    """When PID (this process or an unreaped child) started, in clock ticks since boot: with the
    pid, it names one process for good."""
    return _stat(pid)[19]


def _signal_sessions(sessions, sig, leaders=True):
    """Signals every process of these sessions (also those that left their job's process group),
    or all but their leaders (the jobs' bash)."""
    for pid, (session, _) in _processes().items():
        if session in sessions and (leaders or pid != session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
