"""Unit tests of the profile page."""
