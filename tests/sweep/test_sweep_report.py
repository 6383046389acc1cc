"""The sweep report from a fixed synthetic results table: the largest lossless sparsity has a
known answer, and the report, its tables and its figures are written."""
import json

import pytest

from pinch.scoring.results import append_result, read_rows
from pinch.scoring.training_record import write_details
from pinch.sweep.lossless import Lossless, largest_lossless, lossless_table
from pinch.sweep.report import build
from pinch.sweep.seeds import pairs, seed_number, unanimous
from pinch.sweep.table import load

DENSE = "0123456789abcdef"
SETS = ("test_clean", "test_other")
# method -> target -> lossless vs dense on test_clean (test_other: always lossless)
VERDICTS = {
    "sspg": {0.5: True, 0.65: True, 0.8: True, 0.9: False},
    "ump": {0.5: True, 0.65: False, 0.8: True, 0.9: False},  # a lucky 0.8 does not count
    "gmp": {0.5: True, 0.65: True, 0.9: False},              # 0.8 not run yet: a lower bound
    "imp": {0.5: False, 0.65: False, 0.8: False, 0.9: False},  # lossless at no target
}
REF = "u1 a b c d\nu2 e f g h\nu3 i j k l\n"


def _row(system, method, target=None, lossless=True, seed=None, wer=10.0):
    row = {"system": system, "toolkit": "espnet", "method": method, "wer": {s: wer for s in SETS},
           "notes": "corpus=embedded", "dense_fingerprint": DENSE, "params": 100, "nonzero_params": 50}
    if target is not None:
        sig = {"test_clean": {"p_value": 0.5 if lossless else 0.001, "lossless": lossless},
               "test_other": {"p_value": 0.7, "lossless": True}}
        row.update(target_sparsity=target, sparsity=target, model_sparsity=target * 0.8, steps=40,
                   wall_time_s=100.0 + 10 * target, peak_rss_mb=500.0, granularity="unstructured",
                   mapsswe={"dense": sig, "dense_finetune": sig}, significance=sig, reference="dense_finetune")
        if seed is not None:
            row["seed"] = seed
        if method == "sspg":
            row.update(reach_step=20, reach_s=2.0)
    return row


@pytest.fixture
def table(tmp_path):
    refs = {}
    for s in SETS:
        refs[s] = tmp_path / f"ref_{s}"
        refs[s].write_text(REF)
    hyp_good, hyp_bad = tmp_path / "good", tmp_path / "bad"
    hyp_good.write_text(REF)
    hyp_bad.write_text("u1 a x c d\nu2 x f x h\nu3 i j x x\n")
    for method in ("dense", "dense_finetune"):
        stored = append_result(tmp_path, _row(f"exp/{method}", method))
        write_details(tmp_path, stored, {s: hyp_good for s in SETS}, refs)
    for method, verdicts in VERDICTS.items():
        for target, ok in verdicts.items():
            row = _row(f"exp/{method}{target}/baked", method, target, ok, wer=10.0 if ok else 14.0)
            stored = append_result(tmp_path, row)
            history = {"sparsity": [[10, 1.0, target / 2], [20, 2.0, target]], "eta": [[10, 1.0, 2.0], [20, 2.0, 0.0]],
                       "tau": [[10, 1.0, 0.4], [20, 2.0, 0.1]]} if method == "sspg" else {}
            layers = {f"encoder.encoders.{b}.{k}.weight": target for b in range(2) for k in ("feed_forward.w_1", "self_attn.linear_q")}
            write_details(tmp_path, stored, {s: hyp_good if ok or method != "sspg" else hyp_bad for s in SETS},
                          refs, layers, history)
    for seed in (1, 2):
        stored = append_result(tmp_path, _row(f"exp/sspg0.8_seed{seed}/baked", "sspg", 0.8, True, seed=seed,
                                              wer=10.0 + seed))
        write_details(tmp_path, stored, {s: hyp_good for s in SETS}, refs)
    return tmp_path


def test_largest_lossless_has_the_known_answer(table):
    sweep = load(table, "embedded")
    assert largest_lossless(sweep, "espnet", "sspg", "test_clean") == Lossless(0.8, complete=True)
    assert largest_lossless(sweep, "espnet", "ump", "test_clean") == Lossless(0.5, complete=True)
    assert largest_lossless(sweep, "espnet", "gmp", "test_clean") == Lossless(0.65, complete=False)
    assert str(largest_lossless(sweep, "espnet", "gmp", "test_clean")) == ">= 65%"
    assert str(largest_lossless(sweep, "espnet", "imp", "test_clean")) == "< 50%"
    assert str(Lossless(0.0, complete=False, smallest=0.5)) == "? (50% not run)"  # nothing known yet
    assert largest_lossless(sweep, "espnet", "sspg", "test_other") == Lossless(0.9, complete=True)
    assert lossless_table(sweep, "dense_finetune")["espnet"]["sspg"]["test_clean"].sparsity == 0.8
    # The seeded repeats are not the base run of their cell.
    assert sweep.base("espnet", "sspg", 0.8).seed is None
    assert len(sweep.repeats("espnet", "sspg", 0.8)) == 3


def test_report_states_the_numbers_and_draws_the_figures(table, tmp_path):
    out = tmp_path / "report" / "REPORT.md"
    text = build(table, "embedded", out)
    assert out.read_text() == text
    for name in ("wer_vs_sparsity", "allocation", "schedule", "cost"):
        png = out.parent / "figures" / f"{name}.png"
        assert png.stat().st_size > 5000, name
        assert f"figures/{name}.png" in text
    assert "| espnet | sspg | 80% | 90% |" in text  # vs dense: clean, other
    assert "| espnet | gmp | >= 65% |" in text
    assert "| espnet | imp | < 50% | 90% |" in text
    assert "**Incomplete**: 1 runs" in text and "espnet gmp 0.80" in text
    # Run against run: sspg's 0.9 hypotheses are worse than ump's at 0.9: 5 errors in 12 words.
    assert "| espnet | ump | 0.90 | 1 / 1 | test_clean | 0.00 | 41.67 |" in text
    # ump's one run at 0.8 against each of sspg's three seeds (identical hypotheses)
    assert "| espnet | ump | 0.80 | 1 / 3 | test_clean | 0.00 | 0.00 | 1, 1, 1 | no significant difference |" in text
    assert "sspg worse" in text
    assert "- espnet sspg at 0.80, 3 runs: mean WER [range] test_clean 11.00 [10.00, 12.00]" in text
    assert "0.90: 20 (2.0)" in text  # the update (seconds) at which sparsity first reached the target


def test_structured_variants_are_compared_at_the_share_shrink_removes(table, tmp_path):
    """group_cost: rows and distillation are labels of their own, and the search's section
    reads each one's shrunk share at its largest lossless target, not the target."""
    cells = {(None, "weights"): {0.5: (True, 0.5), 0.65: (False, 0.65)},
             ("rows cost", "rows"): {0.5: (True, 0.41), 0.65: (True, 0.55)}}
    for (variant, name), by_target in cells.items():
        for target, (ok, share) in by_target.items():
            row = _row(f"exp/sspg_structured_{name}{target}/baked", "sspg", target, ok)
            row.update(granularity="structured", sparsity=share, **({"variant": variant} if variant else {}))
            append_result(table, row)
    assert {"sspg structured", "sspg structured (rows cost)"} <= set(load(table, "embedded").labels("espnet"))
    text = build(table, "embedded", tmp_path / "report" / "REPORT.md")
    section = text.split("## Structured: the largest lossless shrunk share", 1)[1].split("\n## ", 1)[0]
    # vs dense then vs the control, test_clean and test_other; 0.8 not run: lower bounds
    assert "| espnet | sspg structured | 50.0% (50%) | 65.0% (>= 65%) | 50.0% (50%) | 65.0% (>= 65%) |" in section
    assert "| espnet | sspg structured (rows cost) | 55.0% (>= 65%) | 55.0% (>= 65%) |" in section
    assert "| espnet | sspg |" not in section  # unstructured methods are not in it


def test_each_variant_meets_its_method_without_the_option(table, tmp_path):
    """The A/B section: a variant (block gates, distilled, ...) against the same method without
    the option, run against run on their hypotheses, by the seed rule; a method with no variant
    and a variant whose method did not run are not in it."""
    refs = {s: table / f"ref_{s}" for s in SETS}
    runs = {(None, 0.5): "good", ("block gates", 0.5): "good", (None, 0.65): "bad", ("block gates", 0.65): "good",
            ("distilled", 0.65): "good"}
    for (variant, target), hyps in runs.items():
        name = f"exp/sspg_structured{'_' + variant.replace(' ', '_') if variant else ''}{target}/baked"
        row = dict(_row(name, "sspg", target), granularity="structured", **({"variant": variant} if variant else {}))
        stored = append_result(table, row)
        write_details(table, stored, {s: table / hyps for s in SETS}, refs)
    # seed 1 of block gates at 0.65 is as bad as the method: the cell is mixed
    row = dict(_row("exp/sspg_structured_block_gates0.65_seed1/baked", "sspg", 0.65, seed=1),
               granularity="structured", variant="block gates")
    write_details(table, append_result(table, row), {s: table / "bad" for s in SETS}, refs)
    text = build(table, "embedded", tmp_path / "report" / "REPORT.md")
    section = text.split("## Variants against their method", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| espnet")]
    # the two runs' hypotheses the same at 0.5; at 0.65 the variant's seed 0 better, seed 1 the same
    assert ("| espnet | sspg structured (block gates) | sspg structured | 0.50 | 1 / 1 | test_clean | 0.00 | 0.00 | 1 "
            "| no significant difference |") in lines
    assert ("| espnet | sspg structured (block gates) | sspg structured | 0.65 | 2 / 1 | test_clean | 41.67 | 20.83 "
            "| 5.7e-07, 1 | mixed (no significant difference 1, variant better 1) |") in lines
    assert ("| espnet | sspg structured (distilled) | sspg structured | 0.65 | 1 / 1 | test_other | 41.67 | 0.00 "
            "| 5.7e-07 | variant better |") in lines
    assert not any("| sspg (" in line or "| ump" in line for line in lines)  # no variant of theirs ran


def test_rows_of_two_dense_models_are_refused(table):
    append_result(table, dict(_row("exp/other/baked", "sspg", 0.5), dense_fingerprint="fedcba9876543210"))
    with pytest.raises(ValueError, match="descend from 2 dense models"):
        load(table, "embedded")


def test_a_corpus_without_rows_is_named(table):
    before = read_rows(table)
    with pytest.raises(ValueError, match="no ASR rows of corpus 'librispeech'"):
        load(table, "librispeech")
    assert json.loads((table / "results.json").read_text()) == before  # the table is read, never written


def test_reach_and_peak_memory_are_read_from_the_run(tmp_path):
    from pinch.scoring.training_record import peak_rss_mb, reach

    # Logged every 10 updates from update 10; the target 0.8 is met at update 30, 4 s after the
    # first point: 6 s from the start of training, the first 10 updates counted at that pace.
    history = {"sparsity": [[10, 0.0, 0.2], [20, 2.0, 0.5], [30, 4.0, 0.7995], [40, 6.0, 0.8]]}
    assert reach(history, 0.8) == (30, 6.0)
    assert reach(history, 0.9) == (None, None)
    (tmp_path / "peak_rss_kb").write_text("2048\nCommand exited with non-zero status 1\n4096\n")
    assert peak_rss_mb(tmp_path) == 4.0
    assert peak_rss_mb(tmp_path / "missing") is None


def test_an_epoch_summary_under_the_same_tag_is_not_a_history_point():
    from pinch.scoring.training_record import per_interval

    # espnet2: interval means every 50 updates, the epoch's mean at its end (625, 1250).
    interval = [[step, step / 100, 0.8] for step in range(50, 650, 50)] + [[675, 7.0, 0.8], [1225, 12.0, 0.8]]
    summaries = [[625, 6.6, 0.63], [1250, 12.6, 0.79]]
    kept = per_interval(sorted(interval + summaries))
    assert kept == sorted(interval)


def _longer(table, system, method, target, time_s, steps, hyps, epochs=None, wer=10.0, seed=None):
    """A run of ``method`` at ``target`` with the given wall time, updates and stored hypotheses
    (a newer row of a system replaces the older in the sweep)."""
    row = dict(_row(system, method, target, wer=wer, seed=seed), wall_time_s=time_s, steps=steps)
    if epochs is not None:
        row["epochs"] = epochs
    stored = append_result(table, row)
    write_details(table, stored, {s: hyps for s in SETS}, {s: table / f"ref_{s}" for s in SETS})


def test_the_cost_at_equal_wer_brackets_the_baselines_time_to_reach_sspg(table, tmp_path):
    """Longer passes of a baseline (rows with epochs) stay out of the grid; the time a baseline
    needs to reach sspg's WER lies between its longest run that stays significantly worse and its
    cheapest run that does not, and the one-pass claim (sspg at most 0.75x that) follows."""
    from pinch.sweep.cost import equal_wer

    good, bad = table / "good", table / "bad"
    # sspg at 0.8 took 108 s with the good hypotheses. imp: the sweep's run and 4 epochs stay
    # worse (bad hypotheses), 8 epochs reaches it: it needs more than 200 s, sspg is 0.54x.
    _longer(table, "exp/imp0.8/baked", "imp", 0.8, 100.0, 40, bad)
    _longer(table, "exp/imp0.8_ep4/baked", "imp", 0.8, 200.0, 80, bad, epochs=4)
    _longer(table, "exp/imp0.8_ep8/baked", "imp", 0.8, 400.0, 160, good, epochs=8)
    # gmp reaches sspg at once in 120 s: sspg saves less than 25%.
    _longer(table, "exp/gmp0.8_ep4/baked", "gmp", 0.8, 120.0, 80, good, epochs=4)
    # ump: its 130 s run stays worse: more than 130 s, and sspg's 108 s is not 0.75x of that.
    _longer(table, "exp/ump0.8/baked", "ump", 0.8, 100.0, 40, bad)
    _longer(table, "exp/ump0.8_ep4/baked", "ump", 0.8, 130.0, 80, bad, epochs=4)
    # l1: its 400 s pass stays worse than sspg, but ends worse than its 100 s one: the bracket
    # assumes a longer pass does not, so nothing is decided.
    _longer(table, "exp/l10.8/baked", "l1", 0.8, 100.0, 40, bad, wer=12.0)
    _longer(table, "exp/l10.8_ep4/baked", "l1", 0.8, 400.0, 80, bad, epochs=4, wer=14.0)
    sweep = load(table, "embedded")
    assert all(r.epochs is None for r in sweep.runs["espnet"]) and len(sweep.longer["espnet"]) == 5
    comparisons = equal_wer(sweep, SETS)
    assert sorted(seed_number(c.sspg) for c in comparisons if c.label == "imp") == [0, 1, 2]  # one per seed
    found = {c.label: c for c in comparisons if c.sspg.seed is None}
    assert [p.run.row.get("steps") for p in found["imp"].points] == [40, 80, 160]
    assert [p.reaches for p in found["imp"].points] == [False, False, True]
    assert found["imp"].bracket() == (200.0, 400.0) and found["imp"].verdict() == "shown"
    assert found["gmp"].bracket() == (0, 120.0) and found["gmp"].verdict() == "refuted"
    assert found["ump"].bracket() == (130.0, None) and found["ump"].verdict() == "open"
    assert found["l1"].bracket() == (400.0, None) and found["l1"].verdict() == "open"
    assert [p.run.row["steps"] for p in found["l1"].worse_when_longer()] == [40, 80]
    assert found["imp"].worse_when_longer() is None

    text = build(table, "embedded", tmp_path / "report" / "REPORT.md")
    assert "**Incomplete**: 4 runs" in text  # gmp at 0.8 and l1 but at 0.8 are missing from the grid
    assert "| espnet | gmp | >= 65% |" in text
    assert "| imp, 8 epochs | 160 | 400 | 0.00 (1) | 0.00 (1) | yes |" in text
    assert ("- espnet at 0.80, sspg seed 0 against imp: **shown** (imp needs more than 200 s and at most 400 s "
            "to reach sspg's WER; sspg's 108 s is 0.27x-0.54x that") in text
    assert "sspg's at least 25% saving against imp is **shown** over sspg's 3 seeds" in text
    assert "sspg seed 0 against ump: **open** (no ump run reaches sspg's WER: it needs more than 130 s" in text
    assert "but the 80-update pass ended worse than the 40-update one, so the bracket does not hold" in text
    assert (tmp_path / "report" / "figures" / "cost_to_wer.png").stat().st_size > 5000


def test_a_verdict_about_a_cell_holds_only_if_it_holds_for_every_seed(table, tmp_path):
    """One lossy seed takes a target out of the lossless range; one slower seed makes the cost
    claim mixed; the seeds' verdicts are counted, not the best one reported."""
    from pinch.sweep.cost import cell_verdicts, equal_wer

    sweep = load(table, "embedded")
    assert largest_lossless(sweep, "espnet", "sspg", "test_clean") == Lossless(0.8, complete=True)
    # seed 1 redone: significantly worse than the dense model on test_clean at 0.8
    row = _row("exp/sspg0.8_seed1/baked", "sspg", 0.8, False, seed=1, wer=13.0)
    stored = append_result(table, row)
    write_details(table, stored, {s: table / "bad" for s in SETS}, {s: table / f"ref_{s}" for s in SETS})
    sweep = load(table, "embedded")
    assert sweep.base("espnet", "sspg", 0.8).lossless("test_clean", "dense")  # the base run alone would say 80%
    assert largest_lossless(sweep, "espnet", "sspg", "test_clean") == Lossless(0.65, complete=True)

    # imp reaches seeds 0 and 2 in 400 s, not in 300 s; seed 1 (redone above, as bad as imp's
    # 300 s run) already in 300 s. Seed 0 took 108 s: shown; seed 1, 108 s of at most 300 s: open;
    # seed 2 took 390 s, more than 0.75x of 400 s: refuted. The cell's claim is mixed.
    _longer(table, "exp/imp0.8_ep8/baked", "imp", 0.8, 400.0, 160, table / "good", epochs=8)
    _longer(table, "exp/imp0.8/baked", "imp", 0.8, 300.0, 40, table / "bad")
    seed2 = dict(_row("exp/sspg0.8_seed2/baked", "sspg", 0.8, True, seed=2, wer=12.0), wall_time_s=390.0)
    stored = append_result(table, seed2)
    write_details(table, stored, {s: table / "good" for s in SETS}, {s: table / f"ref_{s}" for s in SETS})
    sweep = load(table, "embedded")
    comparisons = [c for c in equal_wer(sweep, SETS) if c.label == "imp"]
    by_seed = {seed_number(c.sspg): c.verdict() for c in comparisons}
    assert by_seed[0] == "shown" and by_seed[2] == "refuted"
    assert cell_verdicts(comparisons)[("espnet", 0.8, "imp")] == "mixed (open 1, refuted 1, shown 1)"
    text = build(table, "embedded", tmp_path / "report" / "REPORT.md")
    assert "| espnet | sspg | 65% |" in text
    assert "against imp is **mixed (open 1, refuted 1, shown 1)** over sspg's 3 seeds" in text


def test_the_cost_sets_each_sspg_seed_against_the_baselines_runs_of_the_same_seed(table):
    """A seeded longer pass of a baseline meets the sspg run of its seed only; an sspg seed the
    baseline has no run of meets its unseeded one (the seed rule's single run)."""
    from pinch.sweep.cost import equal_wer

    _longer(table, "exp/imp0.8/baked", "imp", 0.8, 100.0, 40, table / "bad")
    _longer(table, "exp/imp0.8_ep4/baked", "imp", 0.8, 200.0, 80, table / "bad", epochs=4)
    _longer(table, "exp/imp0.8_seed1_ep4/baked", "imp", 0.8, 210.0, 80, table / "good", epochs=4, seed=1)
    by_seed = {seed_number(c.sspg): c for c in equal_wer(load(table, "embedded"), SETS) if c.label == "imp"}
    systems = {seed: [p.run.row["system"] for p in c.points] for seed, c in by_seed.items()}
    assert systems[1] == ["exp/imp0.8/baked", "exp/imp0.8_seed1_ep4/baked"]
    assert systems[0] == systems[2] == ["exp/imp0.8/baked", "exp/imp0.8_ep4/baked"]
    assert by_seed[1].bracket() == (100.0, 210.0) and by_seed[0].bracket() == (200.0, None)


def test_the_seed_rule_pairs_seeds_and_counts_disagreement():
    class R:
        def __init__(self, seed):
            self.seed = seed

    a, b = [R(None), R(1), R(2)], [R(None), R(2)]
    assert [(seed_number(x), seed_number(y)) for x, y in pairs(a, b)] == [(0, 0), (2, 2)]
    assert [(seed_number(x), seed_number(y)) for x, y in pairs([R(None)], a)] == [(0, 0), (0, 1), (0, 2)]
    assert unanimous(["sspg better"] * 3) == "sspg better"
    assert unanimous(["sspg better", "no significant difference", "sspg better"]) == \
        "mixed (no significant difference 1, sspg better 2)"
    assert unanimous(["sspg better", None]) is None and unanimous([]) is None


def test_a_reference_that_moved_between_runs_is_named(table, tmp_path):
    """Each verdict names the hypotheses of the reference it was made against (a digest): the
    report says whether every run was tested against the same ones."""
    for system, digest in (("exp/sspg0.5_seed1/baked", "aaaa"), ("exp/sspg0.5_seed2/baked", "bbbb")):
        row = _row(system, "sspg", 0.5, seed=int(system[-7]))
        for tests in row["mapsswe"].values():
            for sig in tests.values():
                sig["reference_hyps"] = digest
        append_result(table, row)
    text = build(table, "embedded", tmp_path / "report" / "REPORT.md")
    assert ("- espnet: verdicts against `dense_finetune`: its hypotheses by digest, test_clean: 2 versions "
            "(aaaa, bbbb), test_other: 2 versions (aaaa, bbbb); not recorded for") in text
    assert "**: the reference moved between runs**" in text
