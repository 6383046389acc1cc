"""The ESPnet adapter's tests need espnet; without it they are skipped as a group. The recipe
modules share one run of the recipe's stages 1-11 (espnet_dense, tests/conftest.py)."""
import pytest

pytest.importorskip("espnet2", reason="the ESPnet adapter needs espnet (pip install pinch[espnet])")
