"""The Prometheus endpoint, `/metrics`."""
