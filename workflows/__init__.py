"""Platform-neutral workflows, wired in explicit tables.

`HANDLERS` is what the bus runs: command type -> handler (the mapping itself), domain event ->
handlers (`.events`), and record type -> view (`.views`: the cards a record shows, refreshed
whenever what they show changes). A new workflow adds its module's tables here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.bus import EventHandler, Wiring
from bot.commands import CheckSla, RunPageStep, ShowOnCall
from bot.events import Event
from bot.model import Case
from workflows import cards, escalation, lifecycle, paging, queries, rollups, sla
from workflows.digest import commands as digest


def merge_events(*tables: Mapping[type[Event], Sequence[EventHandler]]) -> dict[type[Event], list[EventHandler]]:
    """Every module's handlers of each event, in table order."""
    merged: dict[type[Event], list[EventHandler]] = {}
    for table in tables:
        for event, handlers in table.items():
            merged.setdefault(event, []).extend(handlers)
    return merged


HANDLERS = Wiring(
    {
        **escalation.HANDLERS,
        **lifecycle.HANDLERS,
        **queries.HANDLERS,
        RunPageStep: paging.run_page_step,
        ShowOnCall: paging.show_on_call,
        CheckSla: sla.check_sla,
        **digest.HANDLERS,
    },
    events=merge_events(escalation.EVENT_HANDLERS, rollups.EVENT_HANDLERS),
    views={Case: cards.case_views},
)
