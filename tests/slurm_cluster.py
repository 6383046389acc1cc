"""A real single-node Slurm on localhost for the tests: munged, slurmctld and slurmd with their
own ports, key, socket and state under one folder (each pytest worker starts its own)."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalSlurm:
    """Started by ``start()``; ``env`` points Slurm's client commands at it; ``stop()``."""

    def __init__(self, cpus=2):
        # munged wants every folder above its socket open to all (pytest's tmp dirs are not).
        self.root, self.cpus = Path(tempfile.mkdtemp(prefix="pinch-slurm-")), cpus
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}

    def start(self, timeout=60):
        missing = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not installed: tools/setup_env.sh installs slurmctld, slurmd and munge")
        r = self.root
        for sub in ("state", "spool", "log"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        key = r / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._run(["munged", f"--socket={r}/munge.sock", f"--key-file={key}", f"--pid-file={r}/munged.pid",
                   f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge.seed"])
        self.conf.write_text(f"""ClusterName=pinchtest
SlurmctldHost=localhost
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={r}/munge.sock
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
NodeName=localhost CPUs={self.cpus} RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        env = {**os.environ, **self.env}
        self._run(["slurmctld", "-f", str(self.conf)], env)
        self._run(["slurmd", "-f", str(self.conf)], env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
            if done.returncode == 0 and done.stdout.strip() == "idle":
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the test's Slurm did not come up in {timeout} s (logs: {r}/log)")

    def _run(self, cmd, env=None):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[0]} did not start: {done.stderr.strip()} (logs: {self.root}/log)")

    def stop(self):
        for name in ("slurmd", "slurmctld", "munged"):
            pid_file = self.root / f"{name}.pid"
            if pid_file.exists():
                try:
                    os.kill(int(pid_file.read_text()), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(1)  # the daemons leave their sockets and logs
        shutil.rmtree(self.root, ignore_errors=True)
