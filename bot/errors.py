"""Errors a person can act on. Workflows raise these; adapters show `str(err)` to the caller only."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a request that cannot be done now; the message is shown to the caller."""


class NotFound(UserError):
    pass


class NotAllowed(UserError):
    pass


class InvalidTransition(UserError):
    pass
