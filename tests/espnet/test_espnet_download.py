"""The download form of an ESPnet pack (issue 33 item 4): espnet2's packer stores every member
uncompressed, so a 65%-sparse model's zip is as large as a dense one's; the same zip with its
members deflated is much smaller, holds the same bytes, and plain espnet2 (``unpack``, what
espnet_model_zoo calls, then ``Speech2Text``) loads the model from it, pinch not imported."""
import contextlib
import os
import subprocess
import sys
import zipfile

import torch

from espnet_tiny import TOKENS, tiny_cmd
from pinch.deploy import write_download

SPARSITY = 0.65

PLAIN = """
import sys
import nltk
nltk.download = lambda *args, **kwargs: False  # g2p_en's import would fetch its data: the test runs offline
import torch
from espnet2.bin.asr_inference import Speech2Text
from espnet2.main_funcs.pack_funcs import unpack
zip_path, out, original = sys.argv[1:]
model = Speech2Text(**unpack(zip_path, out)).asr_model
saved = torch.load(original, map_location="cpu", weights_only=True)
loaded = model.state_dict()
assert loaded.keys() == saved.keys() and all(torch.equal(v, saved[k]) for k, v in loaded.items())
assert not [m for m in sys.modules if m == "pinch" or m.startswith("pinch.")], "pinch was imported"
print("loaded", type(model).__name__)
"""


def sparse_pack(root):
    """A ~460k-parameter Conformer CTC model dir, 65% of each matrix pinch gates zeroed by magnitude,
    packed by espnet2's own packer as asr.sh's packing stage calls it."""
    from pinch.offline import forbid_downloads

    forbid_downloads()  # espnet2's tasks import g2p_en, which would try NLTK's downloader
    from espnet2.main_funcs.pack_funcs import pack
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from pinch.targets.selection import select_targets

    (root / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    cmd = tiny_cmd("--encoder_conf", "output_size=96", "--encoder_conf", "linear_units=384")
    cmd[1:1] = [str(root / "tokens.txt")]
    args = ASRTask.get_parser().parse_args(cmd)
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    with torch.no_grad():
        for target in select_targets(model, "conformer"):
            w = target.weight
            w.mul_(w.abs() > w.abs().flatten().kthvalue(int(SPARSITY * w.numel())).values)
    run = root / "exp" / "run"
    run.mkdir(parents=True)
    torch.save(model.state_dict(), run / "model.pth")
    with (run / "config.yaml").open("w", encoding="utf-8") as f:
        yaml_no_alias_safe_dump({**vars(args), "token_list": TOKENS}, f, indent=4, sort_keys=False)
    with contextlib.chdir(root):
        pack(files={"asr_model_file": "exp/run/model.pth"}, yaml_files={"asr_train_config": "exp/run/config.yaml"},
             outpath="run_model.zip")
    return root / "run_model.zip", run / "model.pth"


def test_a_deflated_pack_is_smaller_and_plain_espnet2_loads_it(tmp_path):
    stored, weights = sparse_pack(tmp_path)
    with zipfile.ZipFile(stored) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}  # espnet2's packer compresses nothing
    deflated = tmp_path / "download" / "run_model.zip"
    size = write_download(stored, deflated)
    # Measured: 0.445 of the stored zip (1.84 -> 0.82 MB).
    assert size < 0.5 * stored.stat().st_size
    with zipfile.ZipFile(stored) as a, zipfile.ZipFile(deflated) as b:
        assert a.namelist() == b.namelist() and all(a.read(n) == b.read(n) for n in a.namelist())
    proc = subprocess.run([sys.executable, "-c", PLAIN, str(deflated), str(tmp_path / "unpacked"), str(weights)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "loaded ESPnetASRModel"
