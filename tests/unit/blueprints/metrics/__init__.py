"""Unit tests of /metrics."""
