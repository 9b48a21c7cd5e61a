"""Helpers shared by the test suites: real processes and a browserless sign-in."""
