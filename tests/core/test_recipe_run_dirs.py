"""recipe_lib.sh's compressed_runs: one run dir per method, target, layers gated, granularity,
seed and pass length, so that no run takes another's dir (a finished dir is skipped as done)."""
import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "recipes" / "utils" / "recipe_lib.sh"


def run_dirs(tmp_path, **values):
    (tmp_path / "sspg.yaml").write_text("method: sspg\n")
    settings = " ".join(f"{k}='{v}'" for k, v in {"pruning": "sspg", "targets": "0.5", "granularity": "unstructured",
                                                   "pruning_conf_dir": tmp_path, "dense_dir": "exp/tts", **values}.items())
    script = f'set -euo pipefail\n. "{LIB}"\n{settings}\ncompressed_runs\n'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return [line.split()[2] for line in proc.stdout.splitlines()]


def test_a_preset_other_than_auto_gets_a_run_dir_of_its_own(tmp_path):
    assert run_dirs(tmp_path) == run_dirs(tmp_path, preset="auto") == ["exp/tts_sspg0.5"]
    assert run_dirs(tmp_path, preset="[tacotron2, tacotron2_decoder]") == ["exp/tts_sspg0.5_tacotron2_tacotron2_decoder"]
    assert run_dirs(tmp_path, preset="[auto,fastpitch_decoder]", granularity="structured", compress_seeds="1") == [
        "exp/tts_sspg0.5_auto_fastpitch_decoder_structured_seed1"]
