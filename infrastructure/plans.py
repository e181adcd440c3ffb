"""Reading `terraform show -json` output: keep what the page needs, mask what is sensitive.

The full plan JSON holds variable values and prior state in clear text, sensitive ones
included; it is never stored. What is stored is the list of resource changes and output
changes, each sensitive value replaced by a marker, plus a summary. No Django imports.
"""

from __future__ import annotations

from typing import Any

MASK = "(sensitive)"
ACTION_ORDER = ("create", "update", "replace", "delete", "read")


def mask(value: Any, sensitive: Any, secrets: set[str]) -> Any:
    """Replace the parts of `value` that Terraform's `*_sensitive` shape marks true."""
    if sensitive is True:
        _collect(value, secrets)
        return MASK
    if isinstance(value, dict) and isinstance(sensitive, dict):
        return {key: mask(item, sensitive.get(key), secrets) for key, item in value.items()}
    if isinstance(value, list) and isinstance(sensitive, list):
        return [mask(item, sensitive[i] if i < len(sensitive) else None, secrets) for i, item in enumerate(value)]
    return value


def _collect(value: Any, secrets: set[str]) -> None:
    if isinstance(value, str) and value:
        secrets.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, secrets)
    elif isinstance(value, list):
        for item in value:
            _collect(item, secrets)


def action_of(actions: list[str]) -> str:
    """Terraform's action list as one word: create, update, replace, delete, read or no-op."""
    if "delete" in actions and "create" in actions:
        return "replace"
    if len(actions) == 1:
        return actions[0]
    return "-".join(actions)


def reduce_plan(plan: dict) -> tuple[dict, set[str]]:
    """The storable part of a plan, and every sensitive string found (to redact from logs)."""
    secrets: set[str] = set()
    changes = []
    for rc in plan.get("resource_changes") or []:
        change = rc.get("change") or {}
        action = action_of(change.get("actions") or ["no-op"])
        if action == "no-op":
            continue
        changes.append(
            {
                "address": rc.get("address", ""),
                "module": rc.get("module_address", ""),
                "type": rc.get("type", ""),
                "name": rc.get("name", ""),
                "action": action,
                "before": mask(change.get("before"), change.get("before_sensitive"), secrets),
                "after": mask(change.get("after"), change.get("after_sensitive"), secrets),
                "after_unknown": change.get("after_unknown") or {},
            }
        )
    outputs = {}
    for name, oc in (plan.get("output_changes") or {}).items():
        action = action_of(oc.get("actions") or ["no-op"])
        sensitive = oc.get("after_sensitive") or oc.get("before_sensitive")
        outputs[name] = {
            "action": action,
            "sensitive": bool(sensitive),
            "after": mask(oc.get("after"), oc.get("after_sensitive"), secrets),
        }
    # Variables marked sensitive: their values are in the plan too.
    for name, variable in (plan.get("variables") or {}).items():
        config = ((plan.get("configuration") or {}).get("root_module") or {}).get("variables", {}).get(name, {})
        if config.get("sensitive"):
            _collect(variable.get("value"), secrets)
    drift = [
        {"address": rd.get("address", ""), "action": action_of((rd.get("change") or {}).get("actions") or [])}
        for rd in plan.get("resource_drift") or []
    ]
    reduced = {
        "terraform_version": plan.get("terraform_version", ""),
        "resource_changes": changes,
        "output_changes": outputs,
        "resource_drift": drift,
        "errored": bool(plan.get("errored")),
    }
    return reduced, secrets


def summarize(reduced: dict) -> dict:
    """add / change / destroy counts, and the addresses under each action."""
    by_action: dict[str, list[str]] = {}
    for change in reduced["resource_changes"]:
        by_action.setdefault(change["action"], []).append(change["address"])
    count = {action: len(addresses) for action, addresses in by_action.items()}
    return {
        "add": count.get("create", 0) + count.get("replace", 0),
        "change": count.get("update", 0),
        "destroy": count.get("delete", 0) + count.get("replace", 0),
        "by_action": {action: by_action[action] for action in sorted(by_action, key=_action_rank)},
    }


def _action_rank(action: str) -> int:
    return ACTION_ORDER.index(action) if action in ACTION_ORDER else len(ACTION_ORDER)


def mask_outputs(outputs: dict) -> tuple[dict, set[str]]:
    """`terraform output -json`: sensitive values masked."""
    secrets: set[str] = set()
    masked = {}
    for name, output in outputs.items():
        if output.get("sensitive"):
            _collect(output.get("value"), secrets)
            masked[name] = {"sensitive": True, "value": MASK}
        else:
            masked[name] = {"sensitive": False, "value": output.get("value")}
    return masked, secrets
