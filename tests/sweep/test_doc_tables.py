"""The tables of README.md and docs/ are the data's: regenerated, they come out as committed."""
import shutil
from pathlib import Path

from pinch.sweep.doc_tables import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_tables_match_the_files_they_are_generated_from(capsys):
    assert main(["--check", "--root", str(ROOT)]) == 0, capsys.readouterr().err
    assert "<!-- pinch-table: lossless bench/sweep/embedded -->" in (ROOT / "README.md").read_text()


def test_a_hand_edited_figure_is_found_and_regenerated(tmp_path, capsys):
    shutil.copytree(ROOT / "bench" / "sweep" / "embedded", tmp_path / "bench" / "sweep" / "embedded",
                    ignore=shutil.ignore_patterns("*.nemo", "*.zip", "figures"))
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- pinch-table: lossless ")
    committed = readme[start:readme.index("<!-- /pinch-table -->", start)] + "<!-- /pinch-table -->\n"
    page = tmp_path / "page.md"  # the README's lossless table alone (the other one runs sclite 80 times)
    page.write_text(committed.replace("| sspg | 65% / 65% |", "| sspg | 80% / 65% |", 1))
    assert page.read_text() != committed
    assert main(["--check", "--root", str(tmp_path), str(page)]) == 1
    assert "page.md: differs from its data" in capsys.readouterr().err
    assert main(["--root", str(tmp_path), str(page)]) == 0
    assert page.read_text() == committed


def test_an_unknown_table_is_named(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("<!-- pinch-table: nonsense bench -->\nx\n<!-- /pinch-table -->\n")
    assert main(["--check", "--root", str(tmp_path), str(page)]) == 2
    assert "unknown generated table 'nonsense'" in capsys.readouterr().err


def test_a_whole_pass_row_shows_every_repeat_and_its_warm_up_apart(tmp_path):
    import json

    from pinch.sweep.doc_tables import gate_overhead_pass

    result = {"model": "toy", "device_name": "cpu", "threads": 2, "steps": 10, "variant": "per_matrix",
              "pass_seconds": {"dense": [10.0, 10.0, 12.0], "per_matrix": [11.0, 12.0, 13.2]},
              "passes": [{"projections": 4}] * 3, "repeats": 3, "spread_below_effect": False,
              "pass_time_ratio": {"median": 1.1, "min": 1.1, "max": 1.2}, "compile_fell_back_to_eager": [],
              "warmup_pass": {"ratio": 1.37}}
    path = tmp_path / "whole_pass.json"
    path.write_text(json.dumps(result))
    row = gate_overhead_pass(path).splitlines()[2]
    assert "| 1.100, 1.200, 1.100 | 1.370 | no | none |" in row and "**1.100** [1.100, 1.200] over 3" in row
    del result["warmup_pass"]
    path.write_text(json.dumps(result))
    assert "| none: counted |" in gate_overhead_pass(path)
