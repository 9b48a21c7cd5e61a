"""Unit tests of the blueprints (one package per URL space)."""
