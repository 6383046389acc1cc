"""How the ESPnet recipe launches a training on several GPUs of one machine: one process per GPU,
spawned by espnet2 (asr.sh's --multiprocessing_distributed true), never DataParallel. The
command is checked, not run: this machine has no GPU."""
import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "recipes" / "utils" / "recipe_lib.sh"


def training_command(tmp_path, ngpu, nproc_per_node=1):
    """espnet_train's command line, with the python it would run replaced by echo."""
    script = f"""
set -euo pipefail
. "{LIB}"
python=echo ngpu={ngpu} num_nodes=1 nproc_per_node={nproc_per_node} overwrite=false
train_to_end() {{ shift 2; "$@"; }}
espnet_train "{tmp_path}/run" espnet2.bin.asr_train "a training" --config train.yaml
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()[-1].split()


def test_several_gpus_of_one_machine_get_a_process_each(tmp_path):
    cmd = training_command(tmp_path, ngpu=2)
    assert cmd[cmd.index("--ngpu") + 1] == "2"
    assert cmd[cmd.index("--multiprocessing_distributed") + 1] == "true"


def test_one_gpu_or_the_cpu_is_one_process(tmp_path):
    for ngpu in (0, 1):
        cmd = training_command(tmp_path, ngpu=ngpu)
        assert cmd[cmd.index("--ngpu") + 1] == str(ngpu) and "--multiprocessing_distributed" not in cmd
