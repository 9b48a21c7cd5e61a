"""Worked examples of extending Gatehouse; docs/extending.md walks through them and tests import them."""
