"""Monitoring of a running daemon: Prometheus metrics, the health assessment and the HTTP server for both."""
