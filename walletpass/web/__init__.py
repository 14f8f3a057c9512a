"""Operational endpoints and public downloads: /healthz, /metrics, pass files, template assets."""
