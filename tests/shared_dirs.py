"""A directory that the pytest-xdist workers of one test run share: the first worker that needs it
makes it, the others wait for it (a file lock), so a costly recipe run is paid once per run."""
import os
import shutil

from filelock import FileLock


def made_once(tmp_path_factory, name, make):
    """The directory NAME of this test run, filled by ``make(path)`` unless a worker already did.
    A make that failed leaves nothing trusted: the next worker starts it over."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's root, above every worker's own base
    path = base / name
    with FileLock(f"{path}.lock"):
        if not (path / ".made").exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            make(path)
            (path / ".made").touch()
    return path
