"""The experiment report as rich tables, for ``modelport experiments report``."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelport.outcomes.report import ExperimentReport, VariantReport

__all__ = ["report_tables"]


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


def report_tables(report: ExperimentReport) -> Group:
    """Per-variant table, the comparisons, and the verdict line. Each variant, and each
    comparison, is a column: a terminal of 80 columns shows every measure's name in full."""
    metric = report.metric or "metric"
    variants = Table(title=f"Experiment: {report.model}")
    variants.add_column("")
    for v in report.variants:
        variants.add_column(v.variant, justify="right")
    measures: list[tuple[str, list[str]]] = [
        ("versions", [",".join(map(str, v.versions)) for v in report.variants]),
        ("requests", [str(v.requests) for v in report.variants]),
        ("errors (5xx)", [str(v.errors) for v in report.variants]),
        ("rejected (4xx)", [str(v.rejected) for v in report.variants]),
        ("p50 ms", [_num(v.latency_ms_p50, 2) for v in report.variants]),
        ("p99 ms", [_num(v.latency_ms_p99, 2) for v in report.variants]),
        ("feedback", [str(v.feedback) for v in report.variants]),
        (metric, [_num(_value(report, v)) for v in report.variants]),
    ]
    for name, cells in measures:
        variants.add_row(name, *cells)
    parts: list[Table | Text] = [variants]
    if report.comparisons:
        table = Table(title=f"{metric}: variant minus baseline")
        table.add_column("")
        for c in report.comparisons:
            table.add_column(f"{c.variant} vs {c.baseline}")
        rows: list[tuple[str, list[str]]] = [
            ("difference", ["-" if c.difference is None else f"{c.difference:+.3f}"
                            for c in report.comparisons]),
            ("95% CI", [_interval(c.ci95) for c in report.comparisons]),
            ("p-value", [_num(c.p_value, 4) for c in report.comparisons]),
            ("95% CS (always valid)", [_interval(c.confidence_sequence)
                                       for c in report.comparisons]),
            ("always-valid p", [_num(c.always_valid_p_value, 4) for c in report.comparisons]),
            ("verdict", [c.verdict for c in report.comparisons]),
        ]  # fmt: skip
        for name, cells in rows:
            table.add_row(name, *cells)
        parts.append(table)
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
