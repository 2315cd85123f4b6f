"""Reading a service's Prometheus page in tests, the way a scrape would."""

from __future__ import annotations

from collections.abc import Collection

import httpx
from prometheus_client.parser import text_string_to_metric_families

# (sample name, its labels among the ones asked for, sorted) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, labels: Collection[str]) -> Samples:
    """Every sample on the page, keyed by name and the named labels only (the others,
    such as the service's resource labels, vary between runs)."""
    page = httpx.get(url, timeout=5).raise_for_status().text
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k in labels))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }
