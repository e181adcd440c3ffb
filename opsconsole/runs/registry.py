"""The run kinds the console knows. Apps register theirs with @run_kind in their AppConfig.ready.

A kind is its launch contract, declared next to its job, which launch() enforces whatever the
door (page, dedicated API, generic runs API, CLI, schedule):
- `action`: the permission that starts it;
- `environment`: whether it needs one; `locks_environment`: whether it takes its lock while it runs;
- `validate(params, environment)`: turns what a caller may choose into the run's parameters, built
  on the server from the environment's own definitions (its workspace, a policy or backup of this
  environment), refusing anything else with a ValueError that tells the caller what to do;
- `only_through`: for a kind whose guarantees live in its app's service (approvals, typed
  confirmation, re-authentication), the door that starts it, e.g. "the environment's Deploy
  button or POST /api/v1/environments/<name>/deploy"; the generic doors are refused and name it.

It may also say what its
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
    validate: Callable[[dict, Any], dict] | None = None
    only_through: str = ""
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


# kind name -> what makes two requests of it the same, from the run's parameters (a deploy: the image
# and the strategy), declared by the service that forms the request. While a run is active (awaiting
# approval, queued, running), launch() refuses another of the same kind and identity in the same
# environment as a duplicate naming it; a partial unique index on the runs table holds the rule
# when two requests race past every check.
IDENTITIES: dict[str, Callable[[dict], str]] = {}


def request_identity(*names: str) -> Callable:
    def register(func: Callable[[dict], str]) -> Callable[[dict], str]:
        for name in names:
            IDENTITIES[name] = func
        return func

    return register


def get_kind(name: str) -> RunKind:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownRunKind(name) from None
