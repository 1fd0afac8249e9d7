"""Structured logs: JSON lines in production, readable lines in a terminal; secrets never printed."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_WORDS = ("token", "secret", "password", "authorization", "signature")


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Blank any field whose name suggests a secret, whatever a caller passed."""
    for key in list(event):
        if any(word in key.lower() for word in SECRET_WORDS):
            event[key] = "***"
    return event


def configure(*, json: bool | None = None, level: int = logging.INFO) -> None:
    """Our structlog lines and every library's stdlib logging (Bolt, aiohttp, botbuilder) alike.

    Library records go through structlog's `ProcessorFormatter` with the same processors, so
    Bolt's "Unhandled request" comes out as the same JSON line (redacted, time-stamped) as ours.
    """
    json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    _route_stdlib_logging(shared, renderer, level)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class _StdlibHandler(logging.Handler):
    """Our root handler: writes to stderr as it is at the time (a class of its own, so configuring
    again replaces it instead of adding a second one)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _route_stdlib_logging(shared: list[Any], renderer: Any, level: int) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer])
    handler = _StdlibHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("aiohttp.access", "slack_bolt", "slack_sdk", "botbuilder", "msrest", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
