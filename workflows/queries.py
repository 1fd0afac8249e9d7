"""Read-only answers: a case with its whole timeline, and help (private cases: see bot.access)."""

from __future__ import annotations

from bot.bus import Context, Handler
from bot.commands import Command, ShowCase, ShowHelp
from bot.messages import CardField, Reply
from workflows.cards import case_card, link, local_time
from workflows.grammar import help_text


async def show_case(cmd: ShowCase, ctx: Context) -> Reply:
    case = await ctx.load(cmd.case_id)  # the access rule (bot.access) is applied by every load
    card = case_card(case, ctx.config, ctx.clock.now())
    timeline = await ctx.store.timeline(case.id)
    lines = [f"{local_time(ctx.config, e.at)}  {e.actor}: {e.action}" + (f" ({e.detail})" if e.detail else "")
             for e in timeline]
    fields = [*card.fields, CardField(label="Watchers", value=", ".join(case.watchers) or "none")]
    return Reply(title=card.title, text="Timeline:\n" + "\n".join(lines), fields=fields, case_id=case.id,
                 links=[link(case)])


async def show_help(cmd: ShowHelp, ctx: Context) -> Reply:
    return Reply(text=help_text())


HANDLERS: dict[type[Command], Handler] = {ShowCase: show_case, ShowHelp: show_help}
