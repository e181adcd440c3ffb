"""What every benchmark module shares: the Row it returns, timing helpers, the machine line.

A benchmark module exposes `run(args) -> list[Row]`; `bench/run.py` collects the rows of every
module in one run and prints them as one table. `args` is the driver's argparse namespace
(`args.quick` asks for small sizes; `args.database_url` / `args.redis_url` say which servers).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MB = 1024 * 1024


@dataclass
class Row:
    """One line of the table: what was measured, the figure, the goal, and whether it was met.

    `met` is None where a line has no goal (a figure reported for context)."""

    name: str
    value: str
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.met]


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (fraction 0.5 for p50, 0.95 for p95)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def p50_p95(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds), percentile(seconds, 0.95)


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> str:
    mem_kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu or 'unknown CPU'}), {mem_kb / MB:.0f} GiB, "
        f"Python {platform.python_version()}, load average {load}"
    )


def format_table(rows: list[Row]) -> str:
    lines = ["| benchmark | figure | goal | met? |", "|---|---:|---|:---:|"]
    for row in rows:
        value = f"{row.value} ({row.note})" if row.note else row.value
        lines.append(f"| {row.name} | {value} | {row.goal or '-'} | {row.verdict} |")
    return "\n".join(lines)
