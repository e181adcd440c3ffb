"""Signals apps listen to, so the core never imports them (notifications, for one).

`run_status_changed` (sender=Run; run, previous, status): sent once the change is committed, for
every transition() and when a worker starts a run. Sent with send_robust: a failing receiver is
logged by Django and never changes the run.
"""

from django.dispatch import Signal

run_status_changed = Signal()
