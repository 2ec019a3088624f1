"""The Grafana dashboard for modelport's metrics, generated from code with ``grafanalib``.

``python -m modelport.observability.dashboard deploy/grafana/dashboards/modelport.json`` (re)writes
the JSON the
compose stack provisions (``pip install 'modelport[grafana]'``). Every query uses only metrics
that :mod:`modelport.observability.metrics` exports; tests check that and parse each query with
Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["PANELS", "build", "queries", "render", "write"]

UID = "modelport"
# Every panel reads the datasource the variable names: Grafana's import asks for it
# (``__inputs``), and a provisioned copy picks the default Prometheus datasource.
DS_VARIABLE = "DS_PROMETHEUS"
DATASOURCE = {"type": "prometheus", "uid": "${" + DS_VARIABLE + "}"}
RATE = "[$__rate_interval]"


def _quantiles(metric: str, by: str = "") -> list[tuple[str, str]]:
    group = f"le{', ' + by if by else ''}"
    legend = f"{{{{{by}}}}} " if by else ""
    return [
        (
            f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{RATE})))",
            f"{legend}p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


# (title, unit, [(query, legend)]) in reading order, two panels a row.
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "Request rate by model and variant",
        "reqps",
        [
            (
                f"sum by (model, variant) (rate(modelport_requests_total{RATE}))",
                "{{model}} {{variant}}",
            )
        ],
    ),
    (
        "Error ratio (4xx, 5xx)",
        "percentunit",
        [
            (
                f'sum(rate(modelport_requests_total{{code=~"{c}.."}}{RATE}))'
                f" / sum(rate(modelport_requests_total{RATE}))",
                f"{c}xx",
            )
            for c in ("4", "5")
        ],
    ),
    ("Request latency p50 / p95 / p99", "s", _quantiles("modelport_request_duration_seconds")),
    (
        "p95 latency by variant",
        "s",
        _quantiles("modelport_request_duration_seconds", "variant")[1:2],
    ),
    (
        "Queue wait and inference p95",
        "s",
        [
            (_quantiles(m)[1][0], name)
            for m, name in (
                ("modelport_queue_wait_seconds", "queue wait"),
                ("modelport_inference_duration_seconds", "inference"),
            )
        ],
    ),
    (
        "Mean batch size (rows)",
        "short",
        [
            (
                f"sum by (model) (rate(modelport_batch_size_sum{RATE}))"
                f" / sum by (model) (rate(modelport_batch_size_count{RATE}))",
                "{{model}}",
            )
        ],
    ),
    (
        "Queue depth and in-flight requests",
        "short",
        [
            ("max by (model, version) (modelport_queue_depth)", "queue {{model}} v{{version}}"),
            ("sum(modelport_requests_in_flight)", "in flight"),
        ],
    ),
    (
        "Models ready",
        "short",
        [
            ("sum(modelport_models_loaded)", "versions ready"),
            ("sum(modelport_model_load_failures)", "failed loads"),
        ],
    ),
    (
        "Memory (resident)",
        "bytes",
        [("sum by (instance) (process_resident_memory_bytes)", "{{instance}}")],
    ),
    (
        "CPU",
        "percentunit",
        [(f"sum by (instance) (rate(process_cpu_seconds_total{RATE}))", "{{instance}}")],
    ),
]


def queries() -> list[str]:
    """Every query of the dashboard, as written in it."""
    return [query for _, _, targets in PANELS for query, _ in targets]


def build() -> dict[str, Any]:
    """The dashboard as Grafana JSON."""
    from grafanalib.core import (
        Dashboard,
        DataSourceInput,
        GridPos,
        Target,
        Template,
        Templating,
        Time,
        TimeSeries,
    )

    panels = []
    for index, (title, unit, targets) in enumerate(PANELS):
        panels.append(
            TimeSeries(
                title=title,
                unit=unit,
                dataSource=DATASOURCE,
                gridPos=GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2)),
                targets=[
                    Target(expr=query, legendFormat=legend, refId=chr(ord("A") + n))
                    for n, (query, legend) in enumerate(targets)
                ],
            )
        )
    dashboard = Dashboard(
        title="modelport",
        uid=UID,
        tags=["modelport"],
        timezone="browser",
        time=Time("now-1h", "now"),
        refresh="10s",
        panels=panels,
        inputs=[
            DataSourceInput(
                name=DS_VARIABLE,
                label="Prometheus",
                pluginId="prometheus",
                pluginName="Prometheus",
                description="The Prometheus that scrapes modelport",
            )
        ],
        templating=Templating(
            [Template(name=DS_VARIABLE, label="Prometheus", query="prometheus", type="datasource")]
        ),
    ).auto_panel_ids()
    data: dict[str, Any] = json.loads(json.dumps(dashboard.to_json_data(), default=_encode))
    return data


def _encode(value: Any) -> Any:
    to_json = getattr(value, "to_json_data", None)
    if to_json is None:
        raise TypeError(f"cannot encode {type(value).__name__}")
    return to_json()


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def write(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())


if __name__ == "__main__":  # pragma: no cover - a maintainer's command
    write(Path(sys.argv[1]))
