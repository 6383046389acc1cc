"""The ESPnet adapter's tests need espnet; without it they are skipped as a group."""
import pytest

pytest.importorskip("espnet2", reason="the ESPnet adapter needs espnet (pip install pinch[espnet])")
