"""Prometheus metrics, in one place so every module counts the same way."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

COMMANDS = Counter("escalator_commands_total", "Commands handled", ["command", "outcome"])
COMMAND_SECONDS = Histogram("escalator_command_seconds", "Time to handle a command", ["command"],
                            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0))
DELIVERED = Counter("escalator_outbox_delivered_total", "Outbox messages delivered", ["platform"])
DELIVERY_FAILURES = Counter("escalator_outbox_failures_total", "Failed delivery attempts",
                            ["platform", "kind"])
DEAD_LETTERS = Counter("escalator_outbox_dead_letters_total", "Messages moved to dead letters", ["platform"])
OUTBOX_PENDING = Gauge("escalator_outbox_pending", "Messages waiting for delivery", ["platform"])
TIMERS_FIRED = Counter("escalator_timers_fired_total", "Timers fired", ["kind"])
CASES_OPENED = Counter("escalator_cases_opened_total", "Cases opened", ["tier"])
