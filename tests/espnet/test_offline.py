"""espnet2's own entry points run under pinch.offline without a network attempt."""
import subprocess
import sys

GUARD = """
import socket, sys, runpy
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network refused by the test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = refuse
sys.argv = {argv!r}
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
print("network attempts:", len(attempts))
"""


def _run(argv):
    return subprocess.run([sys.executable, "-c", GUARD.format(argv=argv)], capture_output=True, text=True,
                          timeout=600)


def test_espnet2_entry_point_under_pinch_offline_tries_no_network():
    out = _run(["pinch.offline", "espnet2.bin.tokenize_text", "--help"])
    assert "network attempts: 0" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert "--token_type" in out.stdout  # espnet2's own parser ran
    import nltk.data
    try:  # without the NLTK data, g2p_en would have tried to fetch it: the refusal says so
        nltk.data.find("corpora/cmudict.zip")
    except LookupError:
        assert "not downloading NLTK data 'cmudict'" in out.stderr


def test_pinch_offline_needs_a_module():
    out = subprocess.run([sys.executable, "-m", "pinch.offline"], capture_output=True, text=True)
    assert out.returncode == 1 and "usage: python -m pinch.offline MODULE" in out.stderr
