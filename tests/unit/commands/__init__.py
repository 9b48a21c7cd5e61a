"""Unit tests of the Flask CLI commands (commands/)."""
