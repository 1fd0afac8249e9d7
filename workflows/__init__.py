"""Platform-neutral workflows. `HANDLERS` is the bus's routing table: command type -> handler."""

from __future__ import annotations

from collections.abc import Mapping

from bot.bus import Handler
from bot.commands import CheckSla, Command, RunPageStep, ShowOnCall
from workflows import escalation, lifecycle, paging, queries, sla

HANDLERS: Mapping[type[Command], Handler] = {
    **escalation.HANDLERS,
    **lifecycle.HANDLERS,
    **queries.HANDLERS,
    RunPageStep: paging.run_page_step,
    ShowOnCall: paging.show_on_call,
    CheckSla: sla.check_sla,
}
