"""Loaded by `make mutation` only (`-p tests.mutation_slot`, setup.cfg [mutmut]): mutmut forks one
pytest per mutant, two at a time, from a process whose Django settings are already loaded. Each
fork takes a free slot (a lock file in var/mutation/) and with it a test database and a Redis
database no other fork touches at the same time, so one mutant's tests never see another's rows.
The slot's test database is kept between forks (--reuse-db): migrating it once per mutant would
cost more than the tests."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SLOTS = 4
_held = None


def pytest_configure(config):
    global _held
    directory = Path(os.environ.get("MUTATION_SLOT_DIR", Path(__file__).resolve().parent.parent / "var" / "mutation"))
    directory.mkdir(parents=True, exist_ok=True)
    for slot in range(SLOTS):
        handle = open(directory / f"slot-{slot}.lock", "w")  # noqa: SIM115 (held until pytest ends)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held = handle
        break
    else:
        raise RuntimeError(f"tests.mutation_slot: all {SLOTS} slots are taken; run fewer mutants at a time")
    # pytest-django appends this to the test database's name (test_<name>_mut<N>) when it sets it up.
    os.environ["TOX_PARALLEL_ENV"] = f"mut{slot}"
    from django.conf import settings

    if not settings.configured:  # the first pytest of a run: settings are read from the environment
        return
    # A later pytest in the same process, or a fork of it, inherits what the last one left: the test
    # database's name as the connection's name (--reuse-db keeps it) and the suffix already added.
    import dj_database_url
    from django.db import connections

    connections.close_all()
    database = settings.DATABASES["default"]
    database["NAME"] = dj_database_url.parse(os.environ["DATABASE_URL"])["NAME"]
    database.get("TEST", {}).pop("NAME", None)
    if settings.REDIS_URL:
        url = urlsplit(os.environ["REDIS_URL"])
        settings.REDIS_URL = urlunsplit(url._replace(path=f"/{int(url.path.lstrip('/') or 0) + slot}"))


def pytest_unconfigure(config):
    # Closed here, not at exit: mutmut forks the next mutants from the process that ran the first pytest.
    global _held
    if _held is not None:
        _held.close()
        _held = None
