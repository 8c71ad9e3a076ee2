"""The schema validator fixture, shared with tests/trace."""

from tests.trace.conftest import validator

__all__ = ["validator"]
