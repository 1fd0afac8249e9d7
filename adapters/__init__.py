"""Entry points and chat platform adapters. Importing this package registers the built-in platforms."""

from __future__ import annotations

from adapters import console, slack, teams, webhook  # noqa: F401  (registration happens on import)
