"""Unit tests of the background jobs (jobs/)."""
