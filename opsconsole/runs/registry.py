"""The run kinds the console knows. Apps register theirs with @run_kind in their AppConfig.ready.

A kind names the job function, the permission needed to start it, whether it needs an
environment and whether it takes the environment's lock while it runs. It may also say what its
runs tell the outside world (the notifications app asks): `notifies(previous, status, result)`
names the event a change of status raises (previous is None when the run is created; result is
{} until the run has ended), and `notify_facts(run)` adds what a message about it should say.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class EnvironmentUse(Enum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    NONE = "none"


@dataclass(frozen=True)
class RunKind:
    name: str
    label: str
    func: Callable
    action: str = "run"
    environment: EnvironmentUse = EnvironmentUse.REQUIRED
    locks_environment: bool = True
    validate: Callable[[dict], dict] | None = None
    notifies: Callable[[str | None, str, dict], str | None] | None = None
    notify_facts: Callable[[Any], dict] | None = None


class UnknownRunKind(LookupError):
    def __init__(self, name: str):
        super().__init__(f"There is no run kind called {name!r}. Known kinds: {', '.join(sorted(REGISTRY))}.")


REGISTRY: dict[str, RunKind] = {}


def run_kind(name: str, label: str, **options) -> Callable:
    def register(func: Callable) -> Callable:
        REGISTRY[name] = RunKind(name=name, label=label, func=func, **options)
        return func

    return register


# kind name -> what to say about the world a run left behind when its worker died mid-run (the
# reaper calls it after ending the run): returns an event message and facts to keep in run.result.
LOST_HANDLERS: dict[str, Callable] = {}


def on_worker_lost(*names: str) -> Callable:
    def register(func: Callable) -> Callable:
        for name in names:
            LOST_HANDLERS[name] = func
        return func

    return register


def get_kind(name: str) -> RunKind:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownRunKind(name) from None
