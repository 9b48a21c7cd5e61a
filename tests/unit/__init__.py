"""Unit tests: fakes only (fakeredis, responses), no servers, no network."""
