"""Unit tests of the downstream API client (clients/)."""
