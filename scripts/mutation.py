"""`make mutation`: mutation testing of the functions that hold the console's guarantees, with mutmut.

mutmut copies the code, makes every small change it can to each function (a mutant), and runs the
tests that cover that function against each mutant: a test failing kills it, all passing lets it
survive. The guarantees come in GROUPS, each its guard functions and the test files that check them;
each group runs on its own in var/mutation/<group>/ (its setup.cfg [mutmut] written here, its copy in
mutants/), so a mutant of the audit chain runs the chain's tests, not every test that writes an
audit event. The table this prints (killed / tested, per module, and every survivor) is the one in
docs/testing.md.

    scripts/mutation.py              # every group afresh, then the table
    scripts/mutation.py GROUP...     # these groups afresh (the others' last results stay)
    scripts/mutation.py --report     # the table of the last runs only

Exits non-zero when a module kills fewer than MUTATION_GOAL (90) percent of its mutants.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "var" / "mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"
SLOTS = 4  # as in tests/mutation_slot.py

# group -> its modules' guard functions (Class.method for a method) and the tests that check them.
# A module's other functions are mutated too (mutmut works file by file) but never run. Out of
# mutmut's reach: a function holding a decorated one (opsconsole/api.py's api_endpoint) and one with
# a decorator other than classmethod/staticmethod (@run_kind jobs such as terraform_apply, properties).
GROUPS: dict[str, dict] = {
    # Claiming a run (the conditional UPDATE), the end of a run, and the state machine's transition.
    "claim": {
        "modules": {
            "opsconsole/runs/runner.py": ["execute", "_finish", "_cancel_before_start", "dispatch_next_waiting"],
            "opsconsole/runs/models.py": ["Run.transition", "EnvironmentLock.acquire"],
        },
        "tests": [
            "tests/runs/test_runner.py",
            "tests/runs/test_state_machine.py",
            "tests/runs/test_concurrent_delivery.py",
            "tests/deployments/test_locks.py",
            "tests/backups/test_restore_lock.py",
        ],
    },
    "approvals": {
        "modules": {
            "opsconsole/runs/approvals.py": [
                "approval_deadline",
                "vote",
                "environment_approvals_met",
                "_not_awaiting",
                "_transition",
                "expire_if_due",
            ],
        },
        "tests": ["tests/runs/test_votes.py", "tests/deployments/test_approvals.py"],
    },
    # Launch contracts: the one door every run goes through, duplicates, cancel.
    "launch": {
        "modules": {
            "opsconsole/runs/services.py": [
                "person_of",
                "identity_of",
                "active_duplicate",
                "refuse_duplicate",
                "launch",
                "cancel",
            ],
        },
        "tests": ["tests/runs/test_launch_contracts.py", "tests/runs/test_duplicate_runs.py"],
    },
    "idempotency": {
        "modules": {"opsconsole/runs/idempotency.py": ["principal_id", "fingerprint", "once", "_hold"]},
        "tests": ["tests/runs/test_idempotency.py", "tests/deployments/test_idempotency_key.py"],
    },
    "audit-chain": {
        "modules": {
            "opsconsole/audit/chain.py": [
                "canonical_parts",
                "canonical_row",
                "verify_rows",
                "iter_rows",
                "verify_range",
            ],
        },
        "tests": ["tests/audit/test_chain.py"],
    },
    "throttling": {
        "modules": {
            "opsconsole/access/throttle.py": [
                "login_locked_out",
                "login_succeeded",
                "sudo_locked_out",
                "sudo_succeeded",
                "normalised_username",
                "_key",
                "_take_attempt",
                "_give_back",
                "_audit_refusal",
                "_run",
            ],
        },
        "tests": ["tests/access/test_login_throttling.py", "tests/access/test_sudo_throttling.py"],
    },
    "tokens": {
        "modules": {
            "opsconsole/access/models.py": [
                "hash_token",
                "ApiTokenQuerySet.active",
                "ApiToken.issue",
                "ApiToken.authenticate",
            ],
            "opsconsole/access/middleware.py": ["ApiTokenMiddleware.__call__"],
        },
        "tests": [
            "tests/access/test_token_issue.py",
            "tests/access/test_tokens.py",
            "tests/access/test_token_expiry.py",
            "tests/access/test_token_owner.py",
        ],
    },
    # A restore: the typed target, never the live database, one at a time.
    "restore": {
        "modules": {
            "backups/services.py": ["restore_refusal", "validate_restore", "restore_identity", "request_restore"],
        },
        "tests": ["tests/backups/test_restore_confirmation.py", "tests/backups/test_restore_lock.py"],
    },
    # DR: the typed name, two people, one operation at a time, the plan's state and cooldown.
    "dr": {
        "modules": {
            "dr/services.py": [
                "may_dr",
                "cooldown_until",
                "request",
                "_refuse_if_busy",
                "_check_state",
                "_refuse_if_cooling_down",
                "decide",
                "refuse_changes_while_failed_over",
                "resume",
            ],
        },
        "tests": [
            "tests/dr/test_guards.py",
            "tests/dr/test_concurrent_requests.py",
            "tests/dr/test_deploys_while_failed_over.py",
            "tests/dr/test_lock_wait.py",
        ],
    },
    # Terraform: only a fresh saved plan of this environment is applied, after another person's yes.
    "terraform-apply": {
        "modules": {
            "infrastructure/services.py": ["request_apply", "decide"],
            "infrastructure/models.py": ["Plan.staleness"],
            "infrastructure/jobs.py": ["validate_apply_params"],
        },
        "tests": ["tests/infrastructure/test_apply_guards.py"],
    },
    # A notification's delivery is claimed once, retried with backoff.
    "delivery": {
        "modules": {"notifications/delivery.py": ["deliver"]},
        "tests": ["tests/notifications/test_concurrent_delivery.py", "tests/notifications/test_retries.py"],
    },
}

# What each group's copy holds: the packages and folders the tests import or read. manage.py too:
# pytest-django puts the folder holding it on sys.path, and that must be the copy.
SOURCES = [
    "opsconsole",
    "deployments",
    "backups",
    "dr",
    "infrastructure",
    "notifications",
    "sandbox",
    "templates",
    "terraform",
    "monitoring",
]
LINKED = [*SOURCES, "tests", "manage.py", "pyproject.toml"]

# mutmut's exit codes of a mutant's test run, as its `results` names them.
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {36, -24, 24, 152, 255}


def mutant_glob(path: str, function: str) -> str:
    module = path.removesuffix(".py").replace("/", ".")
    if "." in function:
        cls, method = function.split(".")
        return f"{module}.x\u01c1{cls}\u01c1{method}__mutmut_*"
    return f"{module}.x_{function}__mutmut_*"


def config(group: dict) -> str:
    """The group's setup.cfg: mutmut reads its settings from the folder it runs in."""

    def lines(values: list[str]) -> str:
        return "".join(f"\n    {value}" for value in values)

    return (
        "# Written by scripts/mutation.py for one group; edit GROUPS there.\n"
        "[mutmut]\n"
        f"source_paths ={lines(SOURCES)}\n"
        f"also_copy ={lines(['manage.py'])}\n"
        f"only_mutate ={lines(list(group['modules']))}\n"
        f"pytest_add_cli_args_test_selection ={lines(group['tests'])}\n"
        # Each mutant's pytest gets a test database and a Redis database of its own (tests/mutation_slot.py).
        f"pytest_add_cli_args ={lines(['-p', 'tests.mutation_slot', '--reuse-db', '-p', 'no:cacheprovider'])}\n"
        "use_git_change_detection = false\n"
    )


def drop_slot_databases() -> None:
    """Each run starts from empty slot databases (tests/mutation_slot.py keeps them between the
    mutants of a run): rows an interrupted run committed must not fail the next one's tests."""
    import dj_database_url
    import psycopg

    database = dj_database_url.parse(os.environ["DATABASE_URL"])
    conninfo = {"host": database["HOST"], "port": database["PORT"] or None, "user": database["USER"]}
    conninfo.update(password=database["PASSWORD"] or None, dbname="postgres")
    with psycopg.connect(**{k: v for k, v in conninfo.items() if v}, autocommit=True) as conn:
        for slot in range(SLOTS):
            name = f"test_{database['NAME']}_mut{slot}"
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_group(name: str, children: str) -> int:
    group = GROUPS[name]
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for entry in LINKED:
        (work / entry).symlink_to(ROOT / entry)
    (work / "setup.cfg").write_text(config(group))
    names = [mutant_glob(path, function) for path, functions in group["modules"].items() for function in functions]
    started = time.monotonic()
    status = subprocess.run([str(MUTMUT), "run", "--max-children", children, *names], cwd=work).returncode
    print(f"\nmutation: {name} took {(time.monotonic() - started) / 60:.1f} min (mutmut exit {status})\n", flush=True)
    return status


def report() -> bool:
    """Print the per-module table and the survivors; True when every module reaches the goal."""
    goal = float(os.environ.get("MUTATION_GOAL", "90"))
    rows, survivors, reached = [], [], True
    for name, group in GROUPS.items():
        for path, functions in group["modules"].items():
            meta = WORK / name / "mutants" / f"{path}.meta"
            if not meta.exists():
                rows.append((path, 0, 0, 0.0, 0, 0, 0))
                reached = False
                continue
            globs = [mutant_glob(path, function) for function in functions]
            codes = {
                key: code
                for key, code in json.loads(meta.read_text())["exit_code_by_key"].items()
                if any(fnmatch.fnmatchcase(key, pattern) for pattern in globs)
            }
            killed = sum(code in KILLED or code in TIMEOUT for code in codes.values())
            unchecked = sum(code is None for code in codes.values())
            survived = [key for key, code in codes.items() if code in SURVIVED]
            other = len(codes) - killed - unchecked - len(survived)  # no tests, suspicious, ...
            tested = len(codes) - unchecked
            score = 100.0 * killed / tested if tested else 0.0
            reached &= tested > 0 and score >= goal and not unchecked
            rows.append((path, killed, tested, score, len(survived), other, unchecked))
            survivors += [
                (name, key)
                for key in sorted(survived, key=lambda key: (key.rsplit("_", 1)[0], int(key.rsplit("_", 1)[1])))
            ]
    print("| module | killed | tested | score | survived | no tests / other | not run |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path, killed, tested, score, survived, other, unchecked in rows:
        print(f"| {path} | {killed} | {tested} | {score:.1f}% | {survived} | {other} | {unchecked} |")
    killed, tested = sum(row[1] for row in rows), sum(row[2] for row in rows)
    print(f"| all | {killed} | {tested} | {100.0 * killed / max(tested, 1):.1f}% | | | |")
    if survivors:
        print(
            f"\nSurvivors ({len(survivors)}; `cd var/mutation/GROUP && ../../../.venv/bin/mutmut show NAME` shows one):"
        )
        for name, key in survivors:
            print(f"  {name}: {key}")
    return reached


def main(argv: list[str]) -> int:
    if argv == ["--report"]:
        return 0 if report() else 1
    unknown = [name for name in argv if name not in GROUPS]
    if unknown:
        print(f"mutation: no group {', '.join(unknown)}; the groups: {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    children = os.environ.get("MUTATION_CHILDREN", "2")
    started = time.monotonic()
    status = 0
    drop_slot_databases()
    for name in argv or list(GROUPS):
        status = run_group(name, children) or status
    print(f"mutation: {(time.monotonic() - started) / 60:.1f} min in all\n")
    reached = report()
    return status or (0 if reached else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
