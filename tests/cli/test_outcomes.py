"""``modelport experiments report``: the report from a store, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.outcomes.backends import open_store
from modelport.outcomes.service import default_db
from tests.cli.test_cli import run
from tests.helpers import write_fake_model
from tests.outcomes.helpers import pending, write


def _store(path: Path) -> None:
    store = open_store(path=path)
    records = [pending(f"a{i}", ["yes"]) for i in range(40)]
    records += [pending(f"b{i}", ["yes"], variant="v2", version=2) for i in range(40)]
    write(store, records)
    for i in range(40):
        store.put_feedback(f"a{i}", 0, "yes" if i < 24 else "no", None)  # v1 right 60 %
        store.put_feedback(f"b{i}", 0, "yes" if i < 36 else "no", None)  # v2 right 90 %
    store.close()


def test_report_as_a_table_and_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "o.db"
    _store(db)
    code, out, _ = run(capsys, "experiments", "report", "m", "--db", str(db))
    assert code == 0
    assert "Experiment: m" in out
    assert "0.600" in out
    assert "0.900" in out
    assert "Verdict: no significant difference, always-valid p=0.076" in out
    assert "Latency guardrail, v2 vs v1: +0.00 ms" in out
    assert "Detectable now, v2 vs v1 (80% power)" in out
    code, out, _ = run(capsys, "experiments", "report", "m", "--db", str(db), "--json")
    report = json.loads(out)
    assert report["verdict"] == "no significant difference, always-valid p=0.076"
    assert report["comparisons"][0]["p_value"] == pytest.approx(0.002, abs=5e-4)
    assert [v["feedback"] for v in report["variants"]] == [40, 40]
    (compared,) = report["comparisons"]
    assert compared["verdict_metric"] == report["verdict_metric"] == "accuracy"
    assert compared["power"]["effect"] == pytest.approx(0.3)
    assert compared["power"]["samples_needed"] > 40  # not yet enough for the observed 0.3
    code, out, _ = run(capsys, "experiments", "report", "m", "--db", str(db), "--min-samples", "50")
    assert "Verdict: not enough data yet (v1: 40, v2: 40 of 50 feedback each)" in out


def test_a_missing_store_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "experiments", "report", "m", "--db", str(tmp_path / "none.db"))
    assert code == 2
    assert "no outcome store at" in err
    assert "Traceback" not in err


def test_experiments_start_list_report_stop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, models = tmp_path / "o.db", tmp_path / "models"
    (models / "m").mkdir(parents=True)
    _store(db)  # recorded before the experiment: outside its window
    split = '{"split": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]}'
    base = ["--db", str(db), "--models", str(models)]
    code, _, said = run(capsys, "experiments", "start", "m", "exp1", "--traffic", split, *base)
    assert code == 0, said
    assert "experiment 'exp1' of m started" in said
    state = json.loads((models / "m" / ".modelport-state.json").read_text())
    assert state["traffic"]["split"][0]["weight"] == 90
    code, _, said = run(capsys, "experiments", "start", "m", "exp2", *base)
    assert code == 2
    assert "'exp1' of 'm' is running" in said
    code, out, _ = run(capsys, "experiments", "report", "m", "--json", *base)
    report = json.loads(out)
    assert (report["experiment"]["name"], report["variants"]) == ("exp1", [])
    code, _, said = run(capsys, "experiments", "stop", "m", *base)
    assert "experiment 'exp1' of m stopped" in said
    code, out, _ = run(capsys, "experiments", "list", "m", "--json", *base)
    (listed,) = json.loads(out)
    assert (listed["name"], listed["stopped_at"] is not None) == ("exp1", True)
    code, out, _ = run(capsys, "experiments", "report", "m", "--experiment", "exp1", *base)
    assert "Experiment 'exp1' (stopped)" in out
    code, _, said = run(capsys, "experiments", "start", "m", "x", "--traffic", "{", *base)
    assert code == 2
    assert "--traffic is not valid JSON" in said


def test_an_experiment_on_the_business_value_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--metric value``: the report compares the mean value sent with feedback (here 1 for a
    conversion), higher is better; an unknown metric is refused with the ones there are."""
    db, models = tmp_path / "o.db", tmp_path / "models"
    (models / "m").mkdir(parents=True)
    base = ["--db", str(db), "--models", str(models)]
    open_store(path=db).close()  # the server made it
    code, _, said = run(capsys, "experiments", "start", "m", "x", "--metric", "revenue", *base)
    assert code == 2
    assert "'accuracy', 'mae' or 'value'" in said, said
    code, _, said = run(capsys, "experiments", "start", "m", "buy", "--metric", "value", *base)
    assert code == 0, said
    store = open_store(path=db)
    records = [pending(f"a{i}", ["yes"]) for i in range(40)]
    records += [pending(f"b{i}", ["yes"], variant="v2", version=2) for i in range(40)]
    write(store, records)
    for i in range(40):  # v1 converts 20 % of the time, v2 80 %; labels only on some
        store.put_feedback(f"a{i}", 0, "yes" if i % 2 else None, float(i % 5 == 0))
        store.put_feedback(f"b{i}", 0, None, float(i % 5 != 0))
    store.close()
    code, out, _ = run(capsys, "experiments", "report", "m", "--json", *base)
    report = json.loads(out)
    assert report["metric"] == report["verdict_metric"] == "value"
    assert [v["value"] for v in report["variants"]] == [pytest.approx(0.2), pytest.approx(0.8)]
    assert report["verdict"].startswith("v2 better, always-valid p<0.001"), report["verdict"]
    code, out, _ = run(capsys, "experiments", "report", "m", *base)
    assert "value: variant minus baseline" in out
    assert "0.800" in out


def test_rollouts_from_the_command_line_are_noted_in_the_running_experiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "models"
    write_fake_model(repo, "m", versions=(1, 2), default_version=1)
    code, _, said = run(capsys, "rollout", "m", "2", str(repo))  # no store: nothing to note
    assert (code, "warning" in said) == (0, False), said
    assert not default_db(repo).exists()  # and none is created for it
    open_store(path=default_db(repo)).close()
    assert run(capsys, "experiments", "start", "m", "exp", "--models", str(repo))[0] == 0
    code, _, said = run(capsys, "rollback", "m", str(repo))
    assert code == 0, said
    assert "warning: experiment 'exp' of 'm' is running: this rollback changes" in said
    code, _, said = run(capsys, "rollout", "m", "2", str(repo))
    assert "this rollout changes the traffic" in said
    _, out, _ = run(capsys, "experiments", "list", "m", "--models", str(repo), "--json")
    (listed,) = json.loads(out)
    assert [(e["change"], e["version"]) for e in listed["events"]] == [
        ("rollback", 1),
        ("rollout", 2),
    ]


def test_the_report_fits_80_columns_and_shows_fractional_expected_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each variant is a column, so every measure's name shows in full on a terminal of 80
    columns; the sample-ratio line shows an expected count of 0.5 as such, not as 0."""
    db, models = tmp_path / "o.db", tmp_path / "models"
    (models / "m").mkdir(parents=True)
    base = ["--db", str(db), "--models", str(models)]
    open_store(path=db).close()
    split = '{"split": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}'
    assert run(capsys, "experiments", "start", "m", "e", "--traffic", split, *base)[0] == 0
    store = open_store(path=db)
    write(store, [pending("b0", ["yes"], variant="v2", version=2)])
    store.close()
    code, out, _ = run(capsys, "experiments", "report", "m", *base)
    assert code == 0, out
    assert "…" not in out  # rich cuts a column's name it cannot fit with an ellipsis
    for name in ("requests", "errors (5xx)", "rejected (4xx)", "p50 ms", "feedback", "accuracy"):
        assert f"│ {name} " in out, out
    assert "v1: 0 (expected 0.5), v2: 1 (expected 0.5)" in out, out
