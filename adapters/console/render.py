"""Render neutral notices and replies as readable terminal text (the console is the third adapter)."""

from __future__ import annotations

from bot.messages import Notice, OutboxMessage, Reply, case_thread_of


def where(message: OutboxMessage) -> str:
    a = message.address
    if a.user:
        place = f"DM {a.user}"
    elif parts := case_thread_of(a.thread):
        place = f"{a.channel} · thread {parts[0]}/{parts[1]}"
    elif a.thread:  # a thread named by another subject (an incident space)
        place = f"{a.channel} · thread {a.thread}"
    else:
        place = f"{a.channel}" + (f" · thread {a.reply_to}" if a.reply_to else "")
    private = " · private" if a.private and not a.user else ""
    return f"[{a.platform} {place}{private}]"


def notice_lines(notice: Notice, *, update: bool = False) -> list[str]:
    head = {"card": "▣ card" + (" updated" if update else ""), "page": "☎ page", "direct": "✉",
            "reply": "↳", "post": "✎", "upload": "📎", "amend": "✉ updated"}[notice.kind]
    lines = [f"{head} {notice.title}"]
    if notice.mentions:
        lines.append("   @ " + ", ".join(m.name for m in notice.mentions))
    lines += [f"   {line}" for line in notice.text.splitlines() if line.strip()]
    if any("\n" in f.value for f in notice.fields):  # a report (a digest): one section per block
        for f in notice.fields:
            lines.append(f"   {f.label}")
            lines += [f"     {line}" for line in f.value.splitlines()]
    elif notice.fields:
        lines.append("   " + " | ".join(f"{f.label}: {f.value}" for f in notice.fields))
    if notice.actions:
        lines.append("   " + " ".join(f"[{a.label}]" for a in notice.actions))
    for link in notice.links:
        case = case_thread_of(link.thread)
        lines.append(f"   → {link.label}: {case[0]} thread in {case[1]}" if case
                     else f"   → {link.label}: thread {link.thread}")
    return lines


def render_message(message: OutboxMessage, *, update: bool = False) -> str:
    body = notice_lines(message.notice, update=update)
    return f"{where(message)} {body[0]}" + "".join(f"\n{line}" for line in body[1:])


def render_reply(reply: Reply) -> str:
    mark = "only you see this" if reply.ok else "only you see this · not done"
    lines = [f"({mark})"]
    if reply.title:
        lines.append(reply.title)
    if reply.fields:
        lines += [f"  {f.label}: {f.value}" for f in reply.fields]
    lines += reply.text.splitlines()
    return "\n".join(lines)
