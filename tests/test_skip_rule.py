"""A skip fails the run (tests/testenv.py): a skipped test is a test that did not run, whether it
skipped itself as it ran or its whole module was skipped while pytest collected it. Each case runs
pytest, configured as the suite is (pyproject.toml), on a temporary directory holding a passing
test and the skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PASSING = "def test_it_runs():\n    assert True\n"

# What is skipped, and how the failure names it (the node id and the reason).
SKIPS = {
    "a test that skips itself": (
        {"test_skipped.py": "import pytest\n\n\ndef test_it():\n    pytest.skip('not today')\n"},
        "test_skipped.py::test_it (not today)",
    ),
    "a skipif mark on the module": (
        {
            "test_skipped.py": "import pytest\n\npytestmark = pytest.mark.skipif(True, reason='not today')\n\n\n"
            "def test_it():\n    pass\n"
        },
        "test_skipped.py::test_it (not today)",
    ),
    "a module that skips itself while collected": (
        {
            "test_skipped.py": "import pytest\n\npytest.skip('not today', allow_module_level=True)\n\n\n"
            "def test_it():\n    pass\n"
        },
        "test_skipped.py (skipped while collecting, none of its tests ran: not today)",
    ),
    "an importorskip of a missing module": (
        {"test_skipped.py": "import pytest\n\npytest.importorskip('not_today')\n\n\ndef test_it():\n    pass\n"},
        "test_skipped.py (skipped while collecting, none of its tests ran: could not import 'not_today'",
    ),
    "a conftest.py that skips its directory": (
        {
            "later/conftest.py": "import pytest\n\npytest.skip('not today', allow_module_level=True)\n",
            "later/test_skipped.py": "def test_it():\n    pass\n",
        },
        "later (skipped while collecting, none of its tests ran: not today)",
    ),
}


def run_pytest(directory: Path, files: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    (directory / "test_passing.py").write_text(PASSING)
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(directory), *args, str(directory)],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,  # an xdist run starts Django in every worker
    )


def test_a_run_with_nothing_skipped_passes(tmp_path):
    result = run_pytest(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.parametrize(
    ("files", "named", "workers"),
    [(*skip, []) for skip in SKIPS.values()]
    # make test runs the suite in xdist workers, which report skips to the controlling process.
    + [
        (*SKIPS[name], ["-n", "2"])
        for name in ("a test that skips itself", "a module that skips itself while collected")
    ],
    ids=[*SKIPS, "a test that skips itself, in an xdist worker", "a module skipped while collected, in xdist workers"],
)
def test_a_skip_fails_the_run_naming_what_did_not_run(tmp_path, files, named, workers):
    result = run_pytest(tmp_path, files, *workers)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    failed = lines.index("FAILED: 1 skipped; a skipped test or module is one that did not run:")
    assert lines[failed + 1].startswith(f"  {named}"), result.stdout
    assert "1 passed" in result.stdout  # the other test ran: the skip alone fails the run
