"""A local Bot Connector (Bot Framework REST v3) that records every call the bot makes.

Point an activity's `serviceUrl` (inbound tests) or `platforms.teams.service_url` (delivery tests)
at `fake.url`: botbuilder's real ConnectorClient then talks to this server instead of Microsoft.
It answers like Teams does (a channel post returns `19:...;messageid=<id>`), keeps what was posted
so tests can read the latest version of a message, and can be told to fail the next calls with
429 + Retry-After, 412, 502, 403, ... to exercise retries and dead letters.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from aiohttp.test_utils import TestServer

Operation = Literal["create_conversation", "send_to_conversation", "reply_to_activity", "update_activity",
                    "delete_activity", "get_member"]


@dataclass
class ConnectorCall:
    """One request the bot made, with its decoded JSON body."""

    op: Operation
    conversation_id: str | None
    activity_id: str | None
    body: dict[str, Any]
    status: int = 200
    authorization: str | None = None

    @property
    def activity(self) -> dict[str, Any]:
        """The activity that was sent (for a create, the conversation's first activity)."""
        if self.op == "create_conversation":
            activity: dict[str, Any] = self.body.get("activity") or {}
            return activity
        return self.body

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Cards attached to the activity."""
        return [a["content"] for a in self.activity.get("attachments") or []
                if a.get("contentType") == "application/vnd.microsoft.card.adaptive"]


@dataclass
class _Failure:
    status: int
    op: Operation | None
    retry_after: float | None
    code: str


@dataclass
class Message:
    """The current state of one posted activity (updated in place by update_activity)."""

    id: str
    conversation_id: str
    activity: dict[str, Any]
    versions: list[dict[str, Any]] = field(default_factory=list)


class FakeBotConnector:
    """`async with FakeBotConnector() as fake:` serves on 127.0.0.1 and records `fake.calls`."""

    def __init__(self) -> None:
        self.calls: list[ConnectorCall] = []
        self.messages: dict[str, Message] = {}
        self._failures: deque[_Failure] = deque()
        self._ids = itertools.count(1_700_000_000_001)
        self._server: TestServer | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> FakeBotConnector:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_post("/v3/conversations/{conversation_id}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation_id}/activities/{activity_id}", self._reply)
        app.router.add_put("/v3/conversations/{conversation_id}/activities/{activity_id}", self._update)
        app.router.add_delete("/v3/conversations/{conversation_id}/activities/{activity_id}", self._delete)
        app.router.add_get("/v3/conversations/{conversation_id}/members/{member_id}", self._member)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.close()

    @property
    def url(self) -> str:
        """The service URL, with the trailing slash Teams service URLs have."""
        assert self._server is not None, "use `async with FakeBotConnector()`"
        return str(self._server.make_url("/"))

    # ---- what tests tell it --------------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, op: Operation | None = None,
                  retry_after: float | None = None, code: str = "") -> None:
        """Answer the next `times` calls (of `op`, or any) with `status` (and Retry-After)."""
        for _ in range(times):
            self._failures.append(_Failure(status, op, retry_after, code or _code(status)))

    # ---- what tests read -----------------------------------------------------------------

    def of(self, op: Operation) -> list[ConnectorCall]:
        return [c for c in self.calls if c.op == op and c.status < 300]

    @property
    def created(self) -> list[ConnectorCall]:
        return self.of("create_conversation")

    @property
    def sent(self) -> list[ConnectorCall]:
        """Activities sent into an existing conversation (thread replies, 1:1 messages)."""
        return [c for c in self.calls if c.op in ("send_to_conversation", "reply_to_activity") and c.status < 300]

    @property
    def updated(self) -> list[ConnectorCall]:
        return self.of("update_activity")

    def in_conversation(self, conversation_id: str) -> list[ConnectorCall]:
        """Successful sends into `conversation_id` (a thread is `<channel>;messageid=<root>`)."""
        return [c for c in self.sent if c.conversation_id == conversation_id]

    def message(self, activity_id: str) -> Message:
        return self.messages[activity_id]

    def every_card(self) -> list[dict[str, Any]]:
        """Every Adaptive Card the bot sent, in order (for schema validation)."""
        return [card for c in self.calls if c.status < 300 for card in c.cards]

    # ---- handlers ------------------------------------------------------------------------

    async def _record(self, request: web.Request, op: Operation) -> tuple[ConnectorCall, web.Response | None]:
        body: dict[str, Any] = {}
        if request.can_read_body:
            body = json.loads(await request.text() or "{}")
        call = ConnectorCall(op=op, conversation_id=request.match_info.get("conversation_id"),
                             activity_id=request.match_info.get("activity_id"), body=body,
                             authorization=request.headers.get("Authorization"))
        self.calls.append(call)
        failure = self._take_failure(op)
        if failure is None:
            return call, None
        call.status = failure.status
        headers = {"Retry-After": _seconds(failure.retry_after)} if failure.retry_after is not None else {}
        error = {"error": {"code": failure.code, "message": f"fake connector answered {failure.status}"}}
        return call, web.json_response(error, status=failure.status, headers=headers)

    def _take_failure(self, op: Operation) -> _Failure | None:
        for failure in list(self._failures):
            if failure.op in (None, op):
                self._failures.remove(failure)
                return failure
        return None

    def _store(self, activity_id: str, conversation_id: str, activity: dict[str, Any]) -> None:
        self.messages[activity_id] = Message(activity_id, conversation_id, activity, [activity])

    async def _create_conversation(self, request: web.Request) -> web.Response:
        call, failed = await self._record(request, "create_conversation")
        if failed:
            return failed
        activity_id = str(next(self._ids))
        channel = ((call.body.get("channelData") or {}).get("channel") or {}).get("id")
        if channel:  # a new post in a Teams channel: the conversation is its thread
            conversation_id = f"{channel};messageid={activity_id}"
        else:  # a 1:1 chat with the first member
            members = call.body.get("members") or [{}]
            conversation_id = f"a:personal-{members[0].get('id', 'unknown')}"
        if call.body.get("activity"):
            self._store(activity_id, conversation_id, call.body["activity"])
        return web.json_response({"id": conversation_id, "activityId": activity_id}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        return await self._new_activity(request, "send_to_conversation")

    async def _reply(self, request: web.Request) -> web.Response:
        return await self._new_activity(request, "reply_to_activity")

    async def _new_activity(self, request: web.Request, op: str) -> web.Response:
        """A message posted into a conversation (plain send or reply): record it, give it an id."""
        call, failed = await self._record(request, op)
        if failed:
            return failed
        activity_id = str(next(self._ids))
        self._store(activity_id, call.conversation_id or "", call.body)
        return web.json_response({"id": activity_id}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        call, failed = await self._record(request, "update_activity")
        if failed:
            return failed
        activity_id = call.activity_id or ""
        message = self.messages.get(activity_id)
        if message is None:
            call.status = 404
            return web.json_response({"error": {"code": "NotFound", "message": "no such activity"}},
                                     status=404)
        message.activity = call.body
        message.versions.append(call.body)
        return web.json_response({"id": activity_id}, status=200)

    async def _delete(self, request: web.Request) -> web.Response:
        call, failed = await self._record(request, "delete_activity")
        if failed:
            return failed
        self.messages.pop(call.activity_id or "", None)
        return web.Response(status=200)

    async def _member(self, request: web.Request) -> web.Response:
        _call, failed = await self._record(request, "get_member")
        if failed:
            return failed
        member_id = request.match_info["member_id"]
        return web.json_response({"id": member_id, "name": member_id, "userRole": "user"})


def _code(status: int) -> str:
    return {400: "BadArgument", 403: "BotNotInConversationRoster", 404: "ConversationNotFound",
            412: "PreconditionFailed", 429: "TooManyRequests", 502: "BadGateway",
            504: "GatewayTimeout"}.get(status, "ServiceError")


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
