"""The experiment report as rich tables, for ``modelport experiments report``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelport.outcomes.report import ComparisonReport, ExperimentReport, VariantReport

__all__ = ["report_tables"]

T = TypeVar("T")
Cell = Callable[[T], str]  # one item's cell of a measure


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _count(value: float) -> str:
    """An expected count: ``50``, ``0.5``, ``12.3`` (one decimal at most)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _value(report: ExperimentReport, v: VariantReport) -> float | None:
    """The variant's figure for the report's metric (mean absolute error unless named)."""
    return {"accuracy": v.accuracy, "value": v.value}.get(report.metric or "", v.mae)


def _interval(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"[{pair[0]:+.3f}, {pair[1]:+.3f}]"


def _notes(report: ExperimentReport) -> list[Text]:
    """Per comparison: its latency guardrail, and what it can detect while it has no winner."""
    notes = []
    for c in report.comparisons:
        pair = f"{c.variant} vs {c.baseline}"
        if c.latency is not None:
            g = c.latency
            state = "BREACHED" if g.breached else "ok"
            notes.append(
                Text(
                    f"Latency guardrail, {pair}: {g.difference:+.2f} ms mean "
                    f"(always-valid p={g.always_valid_p_value:.4g}): {state}"
                )
            )
        if c.power is not None:
            p = c.power
            needed = (
                ""
                if p.samples_needed is None
                else (f"; the observed {p.effect:+.3f} needs about {p.samples_needed} per variant")
            )
            notes.append(
                Text(
                    f"Detectable now, {pair} ({p.power:.0%} power): {p.mde:.3f} "
                    f"(a single fixed-horizon read: {p.mde_fixed_horizon:.3f}){needed}"
                )
            )
    return notes


def _transposed(
    title: str, items: Sequence[T], heads: Sequence[str], rows: Sequence[tuple[str, Cell[T]]]
) -> Table:
    """A table with one column per item (headed ``heads``) and one row per measure: a terminal
    of 80 columns shows every measure's name in full."""
    table = Table(title=title)
    table.add_column("")
    for head in heads:
        table.add_column(head, justify="right")
    for name, cell in rows:
        table.add_row(name, *(cell(item) for item in items))
    return table


def report_tables(report: ExperimentReport) -> Group:
    """Per-variant table, the comparisons, and the verdict line."""
    metric = report.metric or "metric"
    variants: list[tuple[str, Cell[VariantReport]]] = [
        ("versions", lambda v: ",".join(map(str, v.versions))),
        ("requests", lambda v: str(v.requests)),
        ("errors (5xx)", lambda v: str(v.errors)),
        ("rejected (4xx)", lambda v: str(v.rejected)),
        ("p50 ms", lambda v: _num(v.latency_ms_p50, 2)),
        ("p99 ms", lambda v: _num(v.latency_ms_p99, 2)),
        ("feedback", lambda v: str(v.feedback)),
        (metric, lambda v: _num(_value(report, v))),
    ]
    heads = [v.variant for v in report.variants]
    parts: list[Table | Text] = [
        _transposed(f"Experiment: {report.model}", report.variants, heads, variants)
    ]
    if report.comparisons:
        compared: list[tuple[str, Cell[ComparisonReport]]] = [
            ("difference", lambda c: "-" if c.difference is None else f"{c.difference:+.3f}"),
            ("95% CI", lambda c: _interval(c.ci95)),
            ("p-value", lambda c: _num(c.p_value, 4)),
            ("95% CS (always valid)", lambda c: _interval(c.confidence_sequence)),
            ("always-valid p", lambda c: _num(c.always_valid_p_value, 4)),
            ("verdict", lambda c: c.verdict),
        ]
        heads = [f"{c.variant} vs {c.baseline}" for c in report.comparisons]
        title = f"{metric}: variant minus baseline"
        parts.append(_transposed(title, report.comparisons, heads, compared))
        parts.extend(_notes(report))
    if report.experiment is not None:
        e = report.experiment
        state = "running" if e.stopped_at is None else "stopped"
        parts.append(Text(f"Experiment {e.name!r} ({state}), {len(e.events)} traffic change(s)"))
    if report.srm is not None:
        s = report.srm
        seen = ", ".join(
            f"{v}: {n} (expected {_count(s.expected[v])})" for v, n in s.observed.items()
        )
        parts.append(Text(f"Sample ratio: {seen}; p={s.p_value:.4g}"))
    parts.append(Text(f"Verdict: {report.verdict}", style="bold"))
    return Group(*parts)
