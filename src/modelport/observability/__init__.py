"""Metrics (one registry, correct across gunicorn workers), tracing and the Grafana dashboard."""
