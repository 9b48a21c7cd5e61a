"""Unit tests of sign-in and sign-out."""
