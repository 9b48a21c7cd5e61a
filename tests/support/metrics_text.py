"""Reading a `/metrics` answer in tests: every sample by name and labels, parsed by prometheus_client's parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


def samples(text: str) -> dict[tuple[str, Labels], float]:
    """{(sample name, labels): value} of one exposition text (raises on text that is not the format)."""
    found: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample, or None when the text has no such sample."""
    return samples(text).get((name, frozenset(labels.items())))


def label_values(text: str) -> set[str]:
    """Every label value in the text (to check that none names a user)."""
    return {label_value for _, labels in samples(text) for _, label_value in labels}
