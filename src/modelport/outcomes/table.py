"""The experiment report as rich tables, for ``modelport experiments report``."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from modelport.outcomes.report import ExperimentReport

__all__ = ["report_tables"]


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report_tables(report: ExperimentReport) -> Group:
    """Per-variant table, the comparisons, and the verdict line."""
    metric = report.metric or "metric"
    variants = Table(title=f"Experiment: {report.model}")
    for column in ("variant", "versions", "requests", "errors", "rejected", "p50 ms", "p99 ms"):
        variants.add_column(column, justify="left" if column == "variant" else "right")
    variants.add_column("feedback", justify="right")
    variants.add_column(metric, justify="right")
    for v in report.variants:
        value = v.accuracy if report.metric == "accuracy" else v.mae
        variants.add_row(
            v.variant, ",".join(map(str, v.versions)), str(v.requests), str(v.errors),
            str(v.rejected), _num(v.latency_ms_p50, 2), _num(v.latency_ms_p99, 2),
            str(v.feedback), _num(value),
        )  # fmt: skip
    parts: list[Table | Text] = [variants]
    if report.comparisons:
        table = Table(title=f"{metric}: variant minus baseline")
        for column in ("baseline", "variant", "difference", "95% CI", "p-value", "verdict"):
            table.add_column(column)
        for c in report.comparisons:
            ci = "-" if c.ci95 is None else f"[{c.ci95[0]:+.3f}, {c.ci95[1]:+.3f}]"
            diff = "-" if c.difference is None else f"{c.difference:+.3f}"
            table.add_row(c.baseline, c.variant, diff, ci, _num(c.p_value, 4), c.verdict)
        parts.append(table)
    parts.append(Text(f"Verdict: {report.verdict}", style="bold"))
    return Group(*parts)
