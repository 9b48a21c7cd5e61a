"""Unit tests of the session store and hooks (sessions/)."""
