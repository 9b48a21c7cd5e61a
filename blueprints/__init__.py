"""Blueprints, one package per URL space."""
