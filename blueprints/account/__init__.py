"""Deleting one's own account."""
