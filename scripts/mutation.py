"""`make mutation`: mutation testing of the functions that hold the console's guarantees, with mutmut.

mutmut (settings in setup.cfg) copies the code into mutants/, makes every small change it can to each
function (a mutant), and runs the tests that cover that function against each mutant: a test failing
kills it, all passing lets it survive. Only the guard functions named in SCOPE are tested; the table
this prints (killed / tested, per module, and every survivor) is the one in docs/testing.md.

    scripts/mutation.py              # a fresh run (mutants/ removed first), then the table
    scripts/mutation.py --report     # the table of the last run only
    scripts/mutation.py NAME...      # (re)run only these mutants (globs), keeping the others' results

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
MUTMUT = Path(sys.executable).parent / "mutmut"

# module -> its guard functions (Class.method for a method). A module's other functions are
# mutated too (mutmut works file by file) but never run, so they count nowhere.
SCOPE: dict[str, list[str]] = {
    # Claiming a run (the conditional UPDATE), the end of a run, and the state machine's transition.
    "opsconsole/runs/runner.py": ["execute", "_finish", "_cancel_before_start", "dispatch_next_waiting"],
    "opsconsole/runs/models.py": ["Run.transition", "EnvironmentLock.acquire"],
    "opsconsole/runs/approvals.py": [
        "approval_deadline",
        "vote",
        "environment_approvals_met",
        "_not_awaiting",
        "_transition",
        "expire_if_due",
    ],
    # Launch contracts: the one door every run goes through, duplicates, cancel.
    "opsconsole/runs/services.py": [
        "person_of",
        "identity_of",
        "active_duplicate",
        "refuse_duplicate",
        "launch",
        "cancel",
    ],
    "opsconsole/runs/idempotency.py": ["principal_id", "fingerprint", "once", "_hold"],
    "opsconsole/audit/chain.py": ["canonical_parts", "canonical_row", "verify_rows", "iter_rows", "verify_range"],
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
    "opsconsole/access/models.py": ["hash_token", "ApiTokenQuerySet.active", "ApiToken.issue", "ApiToken.authenticate"],
    "opsconsole/access/middleware.py": ["ApiTokenMiddleware.__call__"],
    "opsconsole/api.py": ["api_endpoint"],
    "backups/services.py": ["restore_refusal", "validate_restore", "restore_identity", "request_restore"],
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
    "infrastructure/services.py": ["request_apply", "decide"],
    "infrastructure/models.py": ["Plan.staleness"],
    "infrastructure/jobs.py": ["validate_apply_params", "terraform_apply"],
    "notifications/delivery.py": ["deliver"],
}

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


def in_scope(path: str, name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, mutant_glob(path, function)) for function in SCOPE[path])


def report() -> bool:
    """Print the per-module table and the survivors; True when every module reaches the goal."""
    goal = float(os.environ.get("MUTATION_GOAL", "90"))
    rows, survivors, reached = [], [], True
    for path in SCOPE:
        meta = ROOT / "mutants" / f"{path}.meta"
        if not meta.exists():
            print(f"mutation: no results for {path} (run `make mutation` first)", file=sys.stderr)
            return False
        codes = {
            name: code
            for name, code in json.loads(meta.read_text())["exit_code_by_key"].items()
            if in_scope(path, name)
        }
        killed = sum(code in KILLED or code in TIMEOUT for code in codes.values())
        unchecked = sum(code is None for code in codes.values())
        survived = [name for name, code in codes.items() if code in SURVIVED]
        other = len(codes) - killed - unchecked - len(survived)  # no tests, suspicious, ...
        tested = len(codes) - unchecked
        score = 100.0 * killed / tested if tested else 0.0
        reached &= tested > 0 and score >= goal and not unchecked
        rows.append((path, killed, tested, score, len(survived), other, unchecked))
        survivors += sorted(survived, key=lambda name: (name.rsplit("_", 1)[0], int(name.rsplit("_", 1)[1])))
    print("| module | killed | tested | score | survived | no tests / other | not run |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path, killed, tested, score, survived, other, unchecked in rows:
        print(f"| {path} | {killed} | {tested} | {score:.1f}% | {survived} | {other} | {unchecked} |")
    killed, tested = sum(row[1] for row in rows), sum(row[2] for row in rows)
    print(f"| all | {killed} | {tested} | {100.0 * killed / max(tested, 1):.1f}% | | | |")
    if survivors:
        print(f"\nSurvivors ({len(survivors)}; `.venv/bin/mutmut show NAME` shows the change):")
        for name in survivors:
            print(f"  {name}")
    return reached


def main(argv: list[str]) -> int:
    os.chdir(ROOT)
    if argv == ["--report"]:
        return 0 if report() else 1
    names = argv or [mutant_glob(path, function) for path, functions in SCOPE.items() for function in functions]
    if not argv and os.environ.get("MUTATION_KEEP") != "1":
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    children = os.environ.get("MUTATION_CHILDREN", "2")
    started = time.monotonic()
    status = subprocess.run([str(MUTMUT), "run", "--max-children", children, *names]).returncode
    print(f"\nmutation: mutmut took {(time.monotonic() - started) / 60:.1f} min (exit {status})\n")
    reached = report()
    return status or (0 if reached else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
