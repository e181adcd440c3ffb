"""Runs: the Run state machine, its event log, dispatch to a queue and the runner."""
