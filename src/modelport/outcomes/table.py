"""The experiment report as rich tables, for ``modelport experiments report``."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelport.outcomes.report import ExperimentReport

__all__ = ["report_tables"]


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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
    """Per-variant table, the comparisons, and the verdict line."""
    metric = report.metric or "metric"
    variants = Table(title=f"Experiment: {report.model}")
    for column in ("variant", "versions", "requests", "errors", "rejected", "p50 ms", "p99 ms"):
        variants.add_column(column, justify="left" if column == "variant" else "right")
    variants.add_column("feedback", justify="right")
    variants.add_column(metric, justify="right")
    for v in report.variants:
        value = {"accuracy": v.accuracy, "value": v.value}.get(report.metric or "", v.mae)
        variants.add_row(
            v.variant, ",".join(map(str, v.versions)), str(v.requests), str(v.errors),
            str(v.rejected), _num(v.latency_ms_p50, 2), _num(v.latency_ms_p99, 2),
            str(v.feedback), _num(value),
        )  # fmt: skip
    parts: list[Table | Text] = [variants]
    if report.comparisons:
        table = Table(title=f"{metric}: variant minus baseline")
        columns = (
            "baseline",
            "variant",
            "difference",
            "95% CI",
            "p-value",
            "95% CS",
            "always-valid p",
        )
        for column in (*columns, "verdict"):
            table.add_column(column)
        for c in report.comparisons:
            diff = "-" if c.difference is None else f"{c.difference:+.3f}"
            table.add_row(
                c.baseline, c.variant, diff, _interval(c.ci95), _num(c.p_value, 4),
                _interval(c.confidence_sequence), _num(c.always_valid_p_value, 4), c.verdict,
            )  # fmt: skip
        parts.append(table)
        parts.extend(_notes(report))
    if report.experiment is not None:
        e = report.experiment
        state = "running" if e.stopped_at is None else "stopped"
        parts.append(Text(f"Experiment {e.name!r} ({state}), {len(e.events)} traffic change(s)"))
    if report.srm is not None:
        s = report.srm
        seen = ", ".join(f"{v}: {n} (expected {s.expected[v]:.0f})" for v, n in s.observed.items())
        parts.append(Text(f"Sample ratio: {seen}; p={s.p_value:.4g}"))
    parts.append(Text(f"Verdict: {report.verdict}", style="bold"))
    return Group(*parts)
