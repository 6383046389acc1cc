"""Importing pinch.nemo lets NeMo instantiate pinch classes, and only adds its own prefix."""
import subprocess
import sys

from nemo.core.classes import common

TARGET = "pinch.nemo.models.PinchEncDecCTCModelBPE"


def test_nemo_refuses_pinch_targets_without_the_plugin():
    # Fresh interpreter: NeMo's stock allow-list knows nothing of pinch.
    code = ("from nemo.core.classes import common; "
            f"print(common._is_target_allowed({TARGET!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_import_registers_prefix_once():
    import pinch.nemo
    from pinch.nemo import allow_pinch_targets

    allow_pinch_targets()
    allow_pinch_targets()
    assert common.ALLOWED_TARGET_PREFIXES.count("pinch.") == 1
    assert common._is_target_allowed(TARGET)
    assert pinch.nemo.PinchEncDecCTCModelBPE.__module__ + ".PinchEncDecCTCModelBPE" == TARGET


def test_allow_list_still_checks_types():
    import pinch.nemo  # noqa: F401

    # The prefix alone is not enough: NeMo still requires a model or module class.
    assert not common._is_target_allowed("pinch.nemo.archive.save_nemo")
