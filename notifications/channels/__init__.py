"""The kinds of channel a notification can go to, as a registry: kind -> how to check a channel of
that kind (`clean`), what it receives for an event (`payload`, built once and stored on the
Delivery) and how one attempt sends it (`send`). Nothing else in the app switches on a channel's
kind: a new kind (Microsoft Teams, say) is one module like slack.py and one register_channel() line.

A kind nobody registered is refused by name (UnknownChannelKind), never sent through another
kind's code."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from notifications.channels import email, pagerduty, slack


@dataclass(frozen=True)
class ChannelKind:
    name: str  # stored in Channel.kind and Delivery.channel_kind
    label: str
    # clean(channel): normalise the channel's settings, or raise ValidationError({field: message}).
    clean: Callable[[Any], None]
    # payload(event, environment name, facts, summary, at): what is sent, without any secret.
    payload: Callable[..., dict]
    # send(delivery, timeout): one attempt; reads the secret itself; returns a sending.Result.
    send: Callable[[Any, float], Any]


class UnknownChannelKind(LookupError):
    def __init__(self, name: str):
        super().__init__(f"There is no channel kind called {name!r}. Known kinds: {', '.join(sorted(CHANNEL_KINDS))}.")


CHANNEL_KINDS: dict[str, ChannelKind] = {}


def register_channel(kind: ChannelKind) -> ChannelKind:
    existing = CHANNEL_KINDS.get(kind.name)
    if existing is not None and existing != kind:
        raise ValueError(f"The channel kind {kind.name!r} is already registered.")
    CHANNEL_KINDS[kind.name] = kind
    return kind


def channel_kind(name: str) -> ChannelKind:
    try:
        return CHANNEL_KINDS[name]
    except KeyError:
        raise UnknownChannelKind(name) from None


def choices() -> list[tuple[str, str]]:
    """The choices of Channel.kind and Delivery.channel_kind: every registered kind."""
    return [(kind.name, kind.label) for kind in CHANNEL_KINDS.values()]


register_channel(ChannelKind("slack", "Slack (incoming webhook)", slack.clean, slack.payload, slack.send))
register_channel(
    ChannelKind("pagerduty", "PagerDuty (Events API v2)", pagerduty.clean, pagerduty.payload, pagerduty.send)
)
register_channel(ChannelKind("email", "Email", email.clean, email.payload, email.send))
