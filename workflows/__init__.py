"""Platform-neutral workflows, wired in explicit tables.

`HANDLERS` is what the bus runs: command type -> handler (the mapping itself), domain event ->
handlers (`.events`), and record type -> view (`.views`: the cards a record shows, refreshed
whenever what they show changes). A new workflow adds its module's tables here.
"""

from __future__ import annotations

from bot.bus import Wiring
from bot.commands import CheckSla, RunPageStep, ShowOnCall
from bot.events import CaseOpened
from bot.incidents import Incident
from bot.model import Case
from workflows import cards, crisis, escalation, lifecycle, paging, queries, sla

HANDLERS = Wiring(
    {
        **escalation.HANDLERS,
        **lifecycle.HANDLERS,
        **queries.HANDLERS,
        **crisis.HANDLERS,
        RunPageStep: paging.run_page_step,
        ShowOnCall: paging.show_on_call,
        CheckSla: sla.check_sla,
    },
    events={CaseOpened: [*escalation.EVENT_HANDLERS[CaseOpened], *crisis.EVENT_HANDLERS[CaseOpened]]},
    views={Case: cards.case_views, Incident: crisis.incident_views},
)
