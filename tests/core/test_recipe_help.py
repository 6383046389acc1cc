"""Every recipe's --help lists each of its options with its default and a line of help, as
asr.sh's does (the options are the variables at the top of run.sh)."""
import re
import subprocess
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("recipe", ["espnet/asr1", "espnet/tts1", "nemo/asr", "nemo/tts"])
def test_help_lists_every_option_with_its_default_and_help(recipe):
    script = RECIPES / recipe / "run.sh"
    proc = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    listed = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"  --(\w+) (\S+|\".*?\")\s+(.*)", line)
        if m:
            listed[m.group(1)] = (m.group(2), m.group(3))
    head = script.read_text().split("\nparse_options", 1)[0]
    options = [n for n in re.findall(r"^([a-z][a-z0-9_]*)=", head, re.M) if n != "help_message"]
    assert options and sorted(listed) == sorted(options)
    assert [n for n, (_, text) in listed.items() if not text.strip()] == []  # every one has its line of help
    assert listed["stage"] == ("1", "First stage to run.")
