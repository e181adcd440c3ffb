"""Keyset pagination: pages by "rows with a key below this one", so page 1,000 costs what
page 1 costs (OFFSET would scan every row before it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class KeysetPage:
    items: list
    next_before: int | None
    size: int


def parse_int(value: str | None) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or number > 0 else None


def keyset_page(queryset, key: str, before: int | None, size: int = 50) -> KeysetPage:
    """Rows ordered by `key` descending, starting below `before`."""
    if before is not None:
        queryset = queryset.filter(**{f"{key}__lt": before})
    rows = list(queryset.order_by(f"-{key}")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(rows, getattr(rows[-1], key) if has_more and rows else None, size)
