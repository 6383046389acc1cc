import pytest

from tests.conftest import single_thread


@pytest.fixture(autouse=True)
def one_thread():
    with single_thread():
        yield
