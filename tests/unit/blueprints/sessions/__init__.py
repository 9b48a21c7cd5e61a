"""Unit tests of the devices page."""
