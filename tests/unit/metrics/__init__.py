"""Unit tests of the metrics package."""
