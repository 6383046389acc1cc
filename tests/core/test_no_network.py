"""No import and no entry point of pinch lets a dependency reach the network (issue 30).

The runs happen in a network namespace of their own (nothing can leave the machine) under strace,
which records each connect/sendto/sendmsg to an IPv4 or IPv6 address by any thread of any process:
onnxruntime's telemetry is C++ that a Python audit hook never sees. The namespace's resolver is
127.0.0.1 on its own loopback, so a DNS lookup shows up with the host name it asked for.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pinch
from tests.core.offline_runs import runs

HERE = Path(__file__).resolve().parent
# What would keep the dependencies quiet without pinch: the test runs without them, so it
# checks that pinch sets them. onnxruntime sends no telemetry where a CI variable is set.
CLEARED = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
           "HF_DATASETS_OFFLINE", "ORT_RUNNING_UNIT_TESTS", "CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI",
           "CIRCLECI", "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR",
           "BITBUCKET_BUILD_NUMBER", "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI")
SENDS = ("connect", "sendto", "sendmsg", "sendmmsg")
CALL = re.compile(r"^(\d+) +(\w+)\(")
PAYLOAD = re.compile(r'"((?:\\x[0-9a-f]{2})+)"')

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")


def _query_name(payload):
    """The host name a DNS query asks for, or None for other bytes."""
    if len(payload) < 17 or payload[2] & 0xF8 or payload[4:6] != b"\x00\x01":
        return None
    labels, i = [], 12
    while i < len(payload) and payload[i]:
        labels.append(payload[i + 1:i + 1 + payload[i]].decode("ascii", "replace"))
        i += 1 + payload[i]
    return ".".join(labels) or None


def network_use(trace):
    """(calls to an IPv4/IPv6 address, host names looked up) in strace's output."""
    calls, hosts = [], set()
    for line in trace.splitlines():
        m = CALL.match(line)
        if not m or m.group(2) not in SENDS:
            continue
        if "sa_family=AF_INET" in line:  # and AF_INET6; AF_UNIX and AF_NETLINK stay on the machine
            calls.append(line[:200])
        hosts.update(filter(None, (_query_name(bytes.fromhex(p.replace("\\x", ""))) for p in PAYLOAD.findall(line))))
    return calls, sorted(hosts)


def run_offline(cmd, tmp_path, timeout):
    """``cmd`` in a fresh network namespace under strace: (completed process, calls, hosts)."""
    assert shutil.which("strace"), "strace is missing: tools/setup_env.sh installs it"
    resolv, trace = tmp_path / "resolv.conf", tmp_path / "strace.txt"
    resolv.write_text("nameserver 127.0.0.1\n")
    inside = 'ip link set lo up && mount --bind "$0" /etc/resolv.conf && exec "$@"'
    strace = ["strace", "-f", "--seccomp-bpf", "-qq", "-x", "-s", "512", "-e", f"trace={','.join(SENDS)}",
              "-e", "signal=none", "-o", str(trace)]
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    proc = subprocess.run(["unshare", "--net", "--mount", "sh", "-c", inside, str(resolv), *strace, *cmd],
                          env=env, capture_output=True, text=True, timeout=timeout)
    return (proc, *network_use(trace.read_text() if trace.exists() else ""))


def test_the_trace_sees_a_lookup_and_a_connection(tmp_path):
    """The watch itself: a lookup from C (getaddrinfo) and a connection are both caught, by name."""
    probe = ("import socket\n"
             "try: socket.getaddrinfo('telemetry.example.com', 443)\n"
             "except OSError: pass\n"
             "try: socket.create_connection(('192.0.2.1', 443), timeout=1)\n"
             "except OSError: pass\n")
    proc, calls, hosts = run_offline([sys.executable, "-c", probe], tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert hosts == ["telemetry.example.com"]
    assert any("192.0.2.1" in c for c in calls) and any("htons(53)" in c for c in calls)


def test_importing_pinch_turns_the_network_off_without_importing_anything_heavy():
    probe = ("import os, sys, pinch\n"
             "print(sorted(m for m in ('torch', 'onnxruntime', 'nemo', 'espnet2') if m in sys.modules))\n"
             "print(os.environ.get('ORT_DISABLE_TELEMETRY'), os.environ.get('HF_HUB_OFFLINE'))\n")
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:2] == ["[]", "1 1"], out.stderr


def test_the_runs_cover_every_entry_point():
    """A new ``python -m pinch...`` module joins offline_runs.py, or this fails."""
    root = Path(pinch.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        module = path.parent if path.name == "__main__.py" else path.with_suffix("")
        if path.name == "__main__.py" or 'if __name__ == "__main__"' in path.read_text():
            found.add(".".join(("pinch", *module.relative_to(root).parts)))
    assert {module for module, _ in runs(Path("work"))} == found


def test_no_import_nor_entry_point_reaches_the_network(tmp_path):
    """import pinch.nemo (held past onnxruntime's first telemetry call), import pinch.espnet, and
    every ``python -m pinch...`` entry point on tiny inputs (offline_runs.py lists them)."""
    work = tmp_path / "work"
    work.mkdir()
    proc, calls, hosts = run_offline([sys.executable, str(HERE / "offline_runs.py"), str(work)], tmp_path,
                                     timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    failed = {run: code for run, code in json.loads((work / "exit_codes.json").read_text()).items() if code}
    assert not failed, f"{failed}\n{proc.stderr[-4000:]}"
    assert not calls, f"{len(calls)} network calls, DNS lookups of {hosts}:\n" + "\n".join(calls[:10])


def test_nltk_imported_after_pinch_refuses_downloads_and_pinch_does_not_import_it():
    """pinch processes refuse NLTK's downloader without importing nltk themselves (2 s each,
    most never need it): the refusal is put in place when something imports nltk later."""
    probe = ("import sys\nfrom pinch.offline import forbid_downloads\nforbid_downloads()\n"
             "print('nltk imported by pinch:', 'nltk' in sys.modules)\n"
             "import nltk\nprint('download returned:', nltk.download('punkt_tab'))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nltk imported by pinch: False" in done.stdout and "download returned: False" in done.stdout
    assert "not downloading NLTK data 'punkt_tab'" in done.stderr
