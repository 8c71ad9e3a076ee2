"""Reliability: fuzzed inputs, injected faults, guards and concurrency (issue 8).

The harnesses live here (``fuzzing``, ``faultlab``) so that both the CI tests and the
long-running scripts in ``scripts/`` use the same code.
"""
