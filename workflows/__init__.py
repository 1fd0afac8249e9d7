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
from bot.incidents import Incident
from bot.model import Case
from bot.swarms import Swarm
from workflows import cards, crisis, escalation, knowledge, lifecycle, paging, queries, rollups, sla, swarm
from workflows.digest import commands as digest


def _merged(*tables: Mapping[type[Event], Sequence[EventHandler]]) -> dict[type[Event], list[EventHandler]]:
    """Event handler tables of several workflows: each event's handlers in workflow order."""
    out: dict[type[Event], list[EventHandler]] = {}
    for table in tables:
        for event, handlers in table.items():
            out.setdefault(event, []).extend(handlers)
    return out


HANDLERS = Wiring(
    {
        **escalation.HANDLERS,
        **lifecycle.HANDLERS,
        **queries.HANDLERS,
        RunPageStep: paging.run_page_step,
        ShowOnCall: paging.show_on_call,
        CheckSla: sla.check_sla,
        **swarm.HANDLERS,
        **knowledge.HANDLERS,
        **crisis.HANDLERS,
        **digest.HANDLERS,
    },
    events=_merged(escalation.EVENT_HANDLERS, swarm.EVENT_HANDLERS, crisis.EVENT_HANDLERS, rollups.EVENT_HANDLERS),
    views={Case: cards.case_views, Swarm: swarm.swarm_views, Incident: crisis.incident_views},
)
