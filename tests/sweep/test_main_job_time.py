"""bench/main_job_time.py: the main job's times read from its log, and its refusals."""
import importlib.util
import json
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("main_job_time", Path(__file__).resolve().parents[2] / "bench" / "main_job_time.py")
main_job_time = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(main_job_time)


def test_stage_times_are_read_per_recipe_in_run_order():
    log = ["2026-12-07T05:31:36 (recipe_lib.sh:197:stage_time) Stage 1 finished in 276s",
           "2026-12-07T05:32:01 (recipe_lib.sh:197:stage_time) Stage 11 finished in 1092s",
           "2026-12-07T06:02:01 (run.sh:661:main) Successfully finished. [elapsed=1850s]",
           "noise (run.sh:3:main) Stage 4: One-pass compression",
           "2026-12-07T06:05:01 (recipe_lib.sh:197:stage_time) Stage 4 finished in 511s",
           "2026-12-07T06:12:01 (run.sh:479:main) Successfully finished. [elapsed=757s]"]
    recipes = main_job_time.parse(log)
    assert recipes == [{"recipe": "recipes/espnet/asr1", "stages_s": {"1": 276, "11": 1092}, "elapsed_s": 1850},
                       {"recipe": "recipes/nemo/asr", "stages_s": {"4": 511}, "elapsed_s": 757}]
    with pytest.raises(ValueError, match="more recipes finished"):
        main_job_time.parse(log * 3)


def test_an_existing_result_is_never_overwritten(tmp_path):
    out = tmp_path / "t.json"
    out.write_text(json.dumps({"total_s": 1}))
    with pytest.raises(SystemExit, match="exists; give another --out"):
        main_job_time.main(["--out", str(out)])
    assert json.loads(out.read_text()) == {"total_s": 1}
