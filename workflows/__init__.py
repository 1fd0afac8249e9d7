"""Platform-neutral workflows, wired in explicit tables.

`HANDLERS` is what the bus runs: command type -> handler (the mapping itself), domain event ->
handlers (`.events`), and record type -> view (`.views`: the cards a record shows, refreshed
whenever what they show changes). A new workflow adds its module's tables here.
"""

from __future__ import annotations

from bot.bus import Wiring
from bot.commands import CheckSla, RunPageStep, ShowOnCall
from bot.model import Case
from bot.swarms import Swarm
from workflows import cards, escalation, knowledge, lifecycle, paging, queries, sla, swarm

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
    },
    events={
        event: [*escalation.EVENT_HANDLERS.get(event, []), *swarm.EVENT_HANDLERS.get(event, [])]
        for event in {*escalation.EVENT_HANDLERS, *swarm.EVENT_HANDLERS}
    },
    views={Case: cards.case_views, Swarm: swarm.swarm_views},
)
