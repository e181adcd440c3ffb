"""`make bench`: every benchmark of docs/performance.md in one run, printed as one table.

Each module in MODULES exposes `run(args) -> list[Row]` (bench/common.py). The driver creates a
fresh database for the console (`<name>_bench` on the server of DATABASE_URL, dropped at the end
unless --keep), migrates it, points Django at it and at REDIS_URL, runs the selected modules in
order and prints a table of name, figure, goal and whether it was met, with the machine it ran on.

    .venv/bin/python bench/run.py                      # everything, full sizes (11-18 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick              # smaller sizes: a smoke run
    .venv/bin/python bench/run.py --only history,audit # some modules
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Row, format_table, machine  # noqa: E402

MODULES = ["delivery", "history", "click_to_running", "audit", "orchestration", "live_log", "load", "backups"]
DJANGO_MODULES = {"delivery", "history", "click_to_running", "audit", "orchestration", "live_log", "load"}

# Sizes: (full, --quick). Each can be set on the command line.
SIZES = {
    "deployments": (100_000, 5_000),
    "audit_events": (1_000_000, 50_000),
    "requests": (200, 40),
    "runs": (200, 40),
    "appends": (4_000, 800),
    "log_lines": (20_000, 2_000),
    "backup_sizes_mb": ("256,1100", "32"),
    "backup_rounds": (3, 1),
}


def available_modules() -> list[str]:
    here = Path(__file__).resolve().parent
    return [name for name in MODULES if (here / f"{name}.py").exists()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help=f"comma-separated modules (of {', '.join(available_modules())})")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not the published figures")
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres"),
        help="a PostgreSQL server (and a database on it to connect to); the bench creates its own database",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--bench-database", default="", help="name of the database to create (default <name>_bench)")
    for name, (full, _) in SIZES.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(full), default=None)
    args = parser.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    known = available_modules()
    args.modules = [m.strip() for m in args.only.split(",") if m.strip()] or known
    unknown = [m for m in args.modules if m not in known]
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)} (there are: {', '.join(known)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows: list[Row] = []
    failed = False
    started = time.monotonic()
    database = None
    if DJANGO_MODULES & set(args.modules):
        from bench.common import BenchDatabase

        database = BenchDatabase.create(args)
        database.setup_django(args.redis_url)
    load_before = os.getloadavg()
    try:
        for name in args.modules:
            print(f"[bench] {name}...", file=sys.stderr, flush=True)
            began = time.monotonic()
            try:
                module = importlib.import_module(f"bench.{name}")
                rows.extend(module.run(args))
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                failed = True
                traceback.print_exc()
                rows.append(Row(f"{name}: did not complete", f"{type(exc).__name__}: {exc}"[:200], met=False))
            print(f"[bench] {name} done in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    finally:
        if database is not None and not args.keep:
            database.drop()
    mode = "quick (smaller sizes)" if args.quick else "full sizes"
    print(f"Machine: {machine()} (load average at start {' '.join(f'{x:.2f}' for x in load_before)})")
    print(f"Mode: {mode}; wall time {time.monotonic() - started:.0f} s")
    print()
    print(format_table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
