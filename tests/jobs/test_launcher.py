"""pinch.jobs, the recipes' job launcher: on this machine and on a real Slurm (the test's own
single-node cluster), every job runs, each failure is named with its log, and bad input stops
with a message that names the problem before anything runs."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pinch.jobs import JobError, parse_command_line
from pinch.jobs.slurm_conf import SlurmConf, partition_of

# Job 2 fails with code 3; the others print their number and thread count.
JOB_COMMAND = ["bash", "-c", 'echo "job JOB threads $OMP_NUM_THREADS"; [ JOB != 2 ] || exit 3']


def launch(backend, *args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "pinch.jobs", backend, *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=timeout)


def test_local_jobs_share_the_cores_and_the_failed_one_is_named_with_its_log(tmp_path):
    done = launch("local", "--max_jobs_run", "2", "JOB=1:3", "logs/demo.JOB.log", *JOB_COMMAND, cwd=tmp_path)
    assert done.returncode == 1
    threads = max(1, os.cpu_count() // 2)
    for job in (1, 3):
        log = (tmp_path / f"logs/demo.{job}.log").read_text()
        assert f"job {job} threads {threads}" in log and "# Ended (code 0)" in log
    assert "# Ended (code 3)" in (tmp_path / "logs/demo.2.log").read_text()
    assert "1 of 3 demo jobs failed" in done.stderr
    assert "JOB=2 (exit code 3; log: logs/demo.2.log: job 2 threads" in done.stderr
    assert "demo 3 finished (3 of 3 done" in done.stderr


def test_slurm_runs_an_array_and_names_the_failed_and_the_timed_out_job(tmp_path, slurm):
    # Job 4 outlives its one-minute limit: Slurm kills it (about 75 s here).
    command = ["bash", "-c", 'echo "job JOB"; [ JOB != 2 ] || exit 3; [ JOB != 4 ] || sleep 600']
    done = launch("slurm", "--time", "1", "--num_threads", "1", "JOB=1:4", "logs/arr.JOB.log", *command,
                  cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "4 jobs submitted as Slurm job" in done.stderr
    assert "2 of 4 arr jobs failed" in done.stderr
    assert "JOB=2 (exit code 3; log: logs/arr.2.log: job 2)" in done.stderr
    assert "JOB=4 (killed by Slurm at its time limit (Slurm state TIMEOUT" in done.stderr
    assert "log: logs/arr.4.log" in done.stderr
    for job in (1, 3):
        assert "# Ended (code 0)" in (tmp_path / f"logs/arr.{job}.log").read_text()
    assert "DUE TO TIME LIMIT" in (tmp_path / "logs/arr.4.log").read_text()


def test_a_stopped_launcher_cancels_its_slurm_jobs(tmp_path, slurm):
    proc = subprocess.Popen([sys.executable, "-m", "pinch.jobs", "slurm", "JOB=1:2", "logs/s.JOB.log", "sleep", "600"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while "submitted as Slurm job" not in (line := proc.stderr.readline()):
        assert time.monotonic() < deadline and line, "the jobs were not submitted"
    job_id = line.split("Slurm job ")[1].split()[0]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30  # cancelled jobs may show as completing for a moment
    while subprocess.run(["squeue", "-h", "-j", job_id], capture_output=True, text=True).stdout.strip():
        assert time.monotonic() < deadline, f"Slurm job {job_id} is still queued after the launcher stopped"
        time.sleep(0.5)


def test_slurm_bad_input_is_named_and_nothing_runs(tmp_path, slurm):
    conf = tmp_path / "slurm.conf"
    conf.write_text("command sbatch --export=ALL\noption partition=* -p $0\ndefault partition=gpu_a100\n")
    done = launch("slurm", "--config", str(conf), "logs/x.log", "touch", "ran", cwd=tmp_path)
    assert done.returncode == 2
    assert "Slurm partition 'gpu_a100' does not exist (the cluster has: debug" in done.stderr
    done = launch("slurm", "--config", str(conf), "--gpu", "1", "logs/x.log", "touch", "ran", cwd=tmp_path)
    assert f"--gpu: {conf} has no 'option gpu=...' line" in done.stderr
    done = launch("slurm", "--config", str(tmp_path / "none.conf"), "logs/x.log", "touch", "ran", cwd=tmp_path)
    assert "none.conf: no such file" in done.stderr
    # No controller: a configuration whose controller port nobody listens on.
    dead = tmp_path / "dead.conf"
    dead.write_text(slurm.conf.read_text().replace("SlurmctldPort=", "SlurmctldPort=1").replace(
        "MpiDefault=none", "MpiDefault=none\nMessageTimeout=2"))
    done = launch("slurm", "logs/x.log", "touch", "ran", cwd=tmp_path, env={**os.environ, "SLURM_CONF": str(dead)})
    assert done.returncode == 2 and "no Slurm controller answers: sinfo:" in done.stderr
    # No Slurm at all: its client commands are not on PATH.
    done = launch("slurm", "logs/x.log", "touch", "ran", cwd=tmp_path, env={**os.environ, "PATH": "/nonexistent"})
    assert done.returncode == 2 and "the slurm backend needs 'sbatch', which is not on PATH" in done.stderr
    assert not (tmp_path / "ran").exists() and not (tmp_path / "logs/x.log").exists()


@pytest.mark.parametrize("argv, message", [
    (["logs/x.log"], "a log file and a command are needed"),
    (["JOB=1:3", "logs/x.log", "true"], "log logs/x.log has no JOB"),
    (["JOB=3:1", "logs/x.JOB.log", "true"], "job range JOB=3:1 is empty"),
    (["--max_jobs_run"], "option --max_jobs_run needs a value"),
])
def test_command_line_errors(argv, message):
    with pytest.raises(JobError, match=message):
        parse_command_line(argv)


def test_the_local_backend_refuses_a_data_parallel_job(tmp_path):
    done = launch("local", "--nproc_per_node", "2", "logs/x.log", "touch", "ran", cwd=tmp_path)
    assert done.returncode == 2
    assert "--nproc_per_node 2: the local backend runs each job as one process" in done.stderr
    assert not (tmp_path / "ran").exists()


def test_a_job_range_substitutes_its_variable_in_the_log_and_the_command(tmp_path):
    jobs = parse_command_line(["--num-threads", "2", "SPLIT=2:3", "exp/dec.SPLIT.log", "decode", "--keys",
                               "keys.SPLIT.scp", "a b"])
    assert (jobs.var, list(jobs.ids), jobs.name, jobs.options) == ("SPLIT", [2, 3], "dec", {"num_threads": "2"})
    assert jobs.log_of(3) == "exp/dec.3.log"
    script = tmp_path / "job.sh"
    script.write_text(jobs.script(tmp_path).replace("decode", "echo"))
    (tmp_path / "exp").mkdir()
    subprocess.run(["bash", str(script), "3"], check=True)
    assert "--keys keys.3.scp a b\n" in (tmp_path / "exp/dec.3.log").read_text()


def test_slurm_conf_turns_job_options_into_sbatch_arguments(tmp_path):
    conf = SlurmConf("""# as ESPnet's conf/slurm.conf
command sbatch --export=PATH
option time=* --time $0
option mem=* --mem-per-cpu $0
option mem=0
default gpu=0
option gpu=0 -p cpu
option gpu=* -p gpu --gres=gpu:$0 -c $0
""")
    assert conf.sbatch_args({}) == ["sbatch", "--export=PATH", "-p", "cpu"]
    args = conf.sbatch_args({"gpu": "2", "mem": "0", "time": "1:00:00"})
    assert args == ["sbatch", "--export=PATH", "-p", "gpu", "--gres=gpu:2", "-c", "2", "--time", "1:00:00"]
    assert partition_of(args) == "gpu" and partition_of(["sbatch", "--partition=long"]) == "long"
    # The shipped file: a data-parallel training job's nodes and tasks (its processes) per node.
    shipped = SlurmConf.read(Path(__file__).resolve().parents[2] / "conf" / "slurm.conf")
    args = shipped.sbatch_args({"gpu": "4", "num_nodes": "2", "nproc_per_node": "4"})
    assert " --gres=gpu:4 --nodes 2 --ntasks-per-node 4" in " ".join(args)
    with pytest.raises(JobError, match="line 1: expected 'command"):
        SlurmConf("partition gpu\n")
    with pytest.raises(JobError, match="has no 'command sbatch"):
        SlurmConf("option time=* --time $0\n")


def test_a_stopped_local_launcher_kills_its_jobs_and_what_they_run(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "pinch.jobs", "local", "logs/k.log", "bash", "-c",
                             "echo $$ > pid; sleep 600"], cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text().strip():
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.1)
    job_pid = int((tmp_path / "pid").read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(job_pid, 0)


def test_a_rerun_while_the_killed_launchers_jobs_still_run_is_refused(tmp_path, slurm):
    first = subprocess.Popen([sys.executable, "-m", "pinch.jobs", "slurm", "logs/r.log", "sleep", "600"],
                             cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while "submitted as Slurm job" not in (line := first.stderr.readline()):
        assert time.monotonic() < deadline and line, "the job was not submitted"
    job_id = line.split("Slurm job ")[1].split()[0]
    first.kill()  # SIGKILL: no chance to cancel; the job stays in Slurm
    first.wait()
    try:
        again = launch("slurm", "logs/r.log", "sleep", "600", cwd=tmp_path)
        assert again.returncode == 2
        assert f"jobs of an earlier submission are still in Slurm (job {job_id}" in again.stderr
        assert f"scancel {job_id}" in again.stderr
    finally:
        subprocess.run(["scancel", job_id])
