"""Template filters for console pages."""

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """A compact duration: 850ms, 42s, 3m07s, 2h05m."""
    if value is None:
        return ""
    seconds = value.total_seconds()
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@register.filter
def compact_json(value) -> str:
    """Details as one line of JSON (escaped by the template like any text)."""
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
