"""The local launcher can be trusted as run.pl is not: a job's status is its process's, its jobs
die with it even when it is SIGKILLed, a rerun never runs beside an earlier run's survivors, it
runs no more jobs at once than it has cores, and a log it cannot write is named before any runs."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

LAUNCHER = [sys.executable, "-m", "pinch.jobs", "local"]


def launch(*args, cwd, **kwargs):
    return subprocess.run([*LAUNCHER, *args], cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)


def wait_for_pids(*paths, timeout=30):
    """The pids the jobs wrote, once every one has written its own."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() and p.read_text().strip() for p in paths):
        assert time.monotonic() < deadline, "the jobs did not start"
        time.sleep(0.1)
    return [int(p.read_text()) for p in paths]


def alive(pid):
    """A process that runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids, timeout=5):
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[pid for pid in pids if alive(pid)]}"
        time.sleep(0.1)


def test_the_jobs_and_what_they_run_die_with_a_sigkilled_launcher(tmp_path):
    launcher = subprocess.Popen([*LAUNCHER, "--max_jobs_run", "2", "JOB=1:2", "logs/k.JOB.log", "bash", "-c",
                                 "sleep 600 & echo $! > pid.JOB; wait"], cwd=tmp_path)
    pids = wait_for_pids(tmp_path / "pid.1", tmp_path / "pid.2")
    launcher.kill()  # no handler runs: the jobs must die without the launcher's help
    launcher.wait()
    try:
        wait_gone(pids)
    finally:
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    # What the killed run left under logs/q/ names only dead processes: a rerun runs.
    again = launch("JOB=1:2", "logs/k.JOB.log", "echo", "again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "again" in (tmp_path / "logs/k.2.log").read_text()


def test_a_rerun_beside_an_earlier_runs_launcher_or_its_survivor_is_refused(tmp_path):
    # The job puts its sleep in a process group of its own (job control on): the kill that
    # follows a SIGKILLed launcher does not reach it, but the rerun still sees it.
    launcher = subprocess.Popen([*LAUNCHER, "logs/r.log", "bash", "-c", "set -m; sleep 600 & echo $! > pid; wait"],
                                cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    (survivor,) = wait_for_pids(tmp_path / "pid")
    try:
        again = launch("logs/r.log", "touch", "ran", cwd=tmp_path)
        assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
        assert f"the r jobs are being run by another launcher (pid {launcher.pid}" in again.stderr
        assert f"kill {launcher.pid}, then rerun" in again.stderr
        launcher.kill()
        launcher.wait()
        time.sleep(1)
        assert alive(survivor)
        again = launch("logs/r.log", "touch", "ran", cwd=tmp_path)
        assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
        assert "the r jobs of an earlier run still run on this machine (JOB=1: pid" in again.stderr
        assert f"kill {survivor}" in again.stderr and "then rerun" in again.stderr
        assert not (tmp_path / "ran").exists()
    finally:
        os.kill(survivor, signal.SIGKILL)
        launcher.kill()
    wait_gone([survivor])
    again = launch("logs/r.log", "touch", "ran", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "ran").exists()


def test_a_job_killed_after_writing_an_ended_line_has_failed(tmp_path):
    # The job's own bash is killed (SIGKILL) once its command has printed "# Ended (code 0)".
    command = 'echo "# Ended (code 0)"; sleep 600 & echo $! > pid; kill -9 $PPID; wait'
    done = launch("logs/e.log", "bash", "-c", command, cwd=tmp_path)
    try:
        assert done.returncode == 1, done.stderr
        assert "e 1 FAILED: killed by signal 9 (Killed)" in done.stderr
        assert "JOB=1 (killed by signal 9 (Killed); log: logs/e.log" in done.stderr
        # What the job had started dies with it.
        assert not alive(int((tmp_path / "pid").read_text()))
    finally:
        pid = int((tmp_path / "pid").read_text())
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_no_more_jobs_run_at_once_than_the_launcher_has_cores(tmp_path):
    cores = sorted(os.sched_getaffinity(0))[:2]
    (tmp_path / "run").mkdir()
    command = 'touch run/JOB; ls run | wc -l >> counts; echo "threads $OMP_NUM_THREADS"; sleep 0.1; rm run/JOB'
    done = launch("JOB=1:50", "logs/c.JOB.log", "bash", "-c", command, cwd=tmp_path,
                  preexec_fn=lambda: os.sched_setaffinity(0, cores))
    assert done.returncode == 0, done.stderr
    counts = [int(n) for n in (tmp_path / "counts").read_text().split()]
    assert len(counts) == 50 and max(counts) <= len(cores), counts
    assert "threads 1" in (tmp_path / "logs/c.50.log").read_text()


def test_a_log_that_cannot_be_written_is_named_and_nothing_runs(tmp_path):
    (tmp_path / "logs/x.2.log").mkdir(parents=True)
    (tmp_path / "file").write_text("")
    for args, message in [
        (["JOB=1:3", "logs/x.JOB.log"], "log logs/x.2.log is a folder, not a file"),
        (["file/x.log"], "cannot make the log folder file ("),
    ]:
        done = launch(*args, "touch", "ran.JOB", cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert message in done.stderr
        assert not list(tmp_path.glob("ran.*"))
