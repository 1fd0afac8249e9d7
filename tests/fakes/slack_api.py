"""A local Slack Web API for tests: records every call, answers like Slack, fails on demand.

This is how bolt-python tests itself: point `AsyncWebClient(base_url=api.url)` (or the
`SLACK_API_URL` setting) at this server, drive the code, then look at `api.calls`.

    async with FakeSlackApi() as api:
        settings = Settings(slack_api_url=api.url, ...)
        ...
        api.fail("chat.postMessage", status=429, retry_after=3)   # the next call is rate limited
        api.fail("chat.update", status=500, times=2)               # the next two calls are 500s
        api.fail("chat.postMessage", error="channel_not_found")     # HTTP 200, ok=false
        api.fail("chat.postMessage", status=500, times=None)        # fails until `api.heal()`
        api.fail("chat.postMessage", delay=2)                      # answers (normally) 2 s late
        api.fail("chat.postMessage", delay=2, done_first=True)     # posts at once, answers 2 s late
        ...
        posts = api.calls_to("chat.postMessage")                   # [Call(method, args, ...)]
        api.messages["C0L2"]                                       # what the channel shows now
        api.files                                                  # uploaded files by id

Root posts keep their `metadata`, and `conversations.history` answers from `messages` (newest
first, `limit`, metadata only with `include_all_metadata`), as Slack does. Uploads follow the
external upload flow: `files.getUploadURLExternal` hands out an upload URL on this server,
`files.completeUploadExternal` shares the file in `channel_id`.

Besides the Web API (`POST|GET {url}<method>`), it serves `POST {api.response_url}` so a
Bolt `respond()` (a `response_url` in a payload) is recorded too, as method "response_url";
and Socket Mode: `apps.connections.open` hands out a WebSocket on this server, and
`await api.socket_send(envelope)` pushes an envelope to the connected app and returns its ack.
Nothing here knows Escalator: the Teams tests may import it for cross-platform cases.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web


@dataclass
class Call:
    """One request the fake received; `args` merges query, form and JSON body parameters."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: datetime | float
    status: int = 200
    ok: bool = True  # what the fake answered: False for 429/5xx and `ok: false` errors
    token: str | None = None  # the bearer token it came with (tests use made-up tokens)

    def blocks(self) -> list[dict[str, Any]]:
        """The call's `blocks`, decoded if they came as a JSON string (form-encoded calls)."""
        raw = self.args.get("blocks") or []
        return json.loads(raw) if isinstance(raw, str) else list(raw)

    def dump(self) -> str:
        """Everything the call carried, as one string (for `'<!channel>' not in call.dump()`)."""
        return json.dumps(self.args, sort_keys=True)


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: float | None
    times: int | None  # None: until healed
    channel: str | None
    delay: float = 0.0
    done_first: bool = False  # the call takes effect, then the answer is `delay` late


@dataclass
class FakeSlackApi:
    """The fake server. `url` ends with `/api/`, like `https://slack.com/api/`."""

    team_id: str = "T0ACME"
    bot_user_id: str = "U0BOT"
    workspace_url: str = "https://acme.slack.com/"
    clock: Callable[[], datetime] | None = None  # stamps `Call.at`; default: time.monotonic()
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _socket: web.WebSocketResponse | None = None
    _socket_acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    socket_connected: asyncio.Event = field(default_factory=asyncio.Event)

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on a free loopback port; returns `url`."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{id}", self._response_url)
        app.router.add_post("/upload/{id}", self._upload)
        app.router.add_get("/socket", self._socket_mode)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self._port = server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlackApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    @property
    def response_url(self) -> str:
        """A `response_url` to put in payloads; posts to it are recorded as method "response_url"."""
        return f"http://127.0.0.1:{self._port}/response/1"

    # ---- steering --------------------------------------------------------------------

    def fail(self, method: str, *, status: int = 200, error: str | None = None,
             retry_after: float | None = None, times: int | None = 1, channel: str | None = None,
             delay: float = 0.0, done_first: bool = False) -> None:
        """Make the next `times` calls of `method` fail (None: until `heal`).

        `status=429` answers `ratelimited` with a `Retry-After` header (default 1 s);
        `status>=500` answers that status; `status=200` with `error` answers `ok: false`
        (`channel_not_found`, `not_in_channel`, `invalid_auth`, ...). `channel` limits the
        failure to calls for that channel. `delay` (seconds) answers late, to make a client time out;
        with `done_first` the call takes effect (the message is posted) before the late answer.
        """
        if status == 429:
            error = error or "ratelimited"
            retry_after = 1 if retry_after is None else retry_after
        elif status >= 500:
            error = error or "internal_error"
        elif not error and not delay:
            raise ValueError("a failure with status 200 needs an error code or a delay")
        self._failures.setdefault(method, []).append(
            _Failure(status, error, retry_after, times, channel, delay, done_first))

    def heal(self, method: str | None = None) -> None:
        """Forget the failures of `method` (or of every method)."""
        if method is None:
            self._failures.clear()
        else:
            self._failures.pop(method, None)

    def reset(self) -> None:
        """Forget calls, messages and failures (the ts counter keeps going)."""
        self.calls.clear()
        self.messages.clear()
        self._failures.clear()

    # ---- reading ---------------------------------------------------------------------

    def calls_to(self, *methods: str, ok_only: bool = True) -> list[Call]:
        """The calls of these methods, in order; by default only those that were answered ok."""
        return [c for c in self.calls if c.method in methods and (c.ok or not ok_only)]

    def methods(self) -> list[str]:
        """Every method called so far, in order (failed calls included)."""
        return [c.method for c in self.calls]

    async def socket_send(self, envelope: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
        """Push a Socket Mode envelope (`type`, `envelope_id`, `payload`) and wait for the app's ack."""
        await asyncio.wait_for(self.socket_connected.wait(), timeout)
        assert self._socket is not None
        envelope_id = str(envelope.setdefault("envelope_id", f"env-{next(self._ts)}"))
        envelope.setdefault("accepts_response_payload", True)
        waiter = self._socket_acks[envelope_id] = asyncio.get_running_loop().create_future()
        await self._socket.send_str(json.dumps(envelope))
        return await asyncio.wait_for(waiter, timeout)

    # ---- the server ------------------------------------------------------------------

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._socket = ws
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "connection_info": {"app_id": "A0ESC"}}))
        self.socket_connected.set()
        async for msg in ws:
            if msg.type != web.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            self.calls.append(Call(method="socket_mode_ack", args=data, headers={}, at=self._now()))
            waiter = self._socket_acks.pop(str(data.get("envelope_id")), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
        self.socket_connected.clear()
        return ws

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _args(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        auth = request.headers.get("Authorization", "")
        call = Call(method=method, args=args, headers=headers, at=self._now(),
                    token=auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None)
        self.calls.append(call)
        failure = self._take_failure(method, args)
        if failure is not None and failure.done_first:
            answer = self._answer(method, args)
            await asyncio.sleep(failure.delay)
            call.ok = bool(answer.get("ok"))
            return web.json_response(answer)
        if failure is not None and failure.delay:
            await asyncio.sleep(failure.delay)
        if failure is not None and failure.error:
            call.status, call.ok = failure.status, False
            extra = {"Retry-After": _seconds(failure.retry_after)} if failure.retry_after is not None else {}
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status,
                                     headers=extra)
        if not request.headers.get("Authorization", "").startswith("Bearer ") and method != "api.test":
            call.ok = False
            return web.json_response({"ok": False, "error": "not_authed"})
        answer = self._answer(method, args)
        call.ok = bool(answer.get("ok"))
        return web.json_response(answer)

    async def _upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        self.calls.append(Call(method="upload", args={"id": request.match_info["id"], "size": len(data)},
                               headers={}, at=self._now()))
        self.files.setdefault(request.match_info["id"], {})["content"] = data
        return web.Response(text="OK")

    async def _response_url(self, request: web.Request) -> web.Response:
        args = await _args(request)
        self.calls.append(Call(method="response_url", args=args, headers=dict(request.headers), at=self._now()))
        return web.json_response({"ok": True})

    def _take_failure(self, method: str, args: dict[str, Any]) -> _Failure | None:
        for failure in self._failures.get(method, []):
            if failure.channel and failure.channel != args.get("channel"):
                continue
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures[method].remove(failure)
            return failure
        return None

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}
        if method == "auth.test":
            return {"ok": True, "url": self.workspace_url, "team": "Acme", "user": "escalator",
                    "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": "B0BOT"}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            channel = str(args.get("channel", ""))
            ts = f"1700000000.{next(self._ts):06d}"
            message = {"ts": ts, "text": args.get("text", ""), "blocks": _decode(args.get("blocks")),
                       "thread_ts": args.get("thread_ts"), "user": self.bot_user_id}
            if args.get("metadata"):
                message["metadata"] = _decode(args["metadata"])
            if method == "chat.postMessage":
                self.messages.setdefault(channel, []).append(message)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            channel = str(args.get("channel", ""))
            for message in self.messages.get(channel, []):
                if message["ts"] == args.get("ts"):
                    message.update(text=args.get("text", ""), blocks=_decode(args.get("blocks")))
                    return {"ok": True, "channel": channel, "ts": message["ts"], "text": message["text"]}
            return {"ok": False, "error": "message_not_found"}
        if method == "chat.getPermalink":
            channel, ts = str(args.get("channel", "")), str(args.get("message_ts", ""))
            return {"ok": True, "channel": channel,
                    "permalink": f"{self.workspace_url}archives/{channel}/p{ts.replace('.', '')}"}
        if method == "conversations.history":
            history = list(reversed(self.messages.get(str(args.get("channel", "")), [])))
            history = [m for m in history if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
            with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
            shown = [{k: v for k, v in m.items() if k != "metadata" or with_metadata}
                     for m in history[:int(args.get("limit") or 100)]]
            return {"ok": True, "messages": shown, "has_more": len(history) > len(shown)}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts):08d}"
            self.files[file_id] = {"id": file_id, "filename": args.get("filename"), "length": args.get("length")}
            return {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self._port}/upload/{file_id}"}
        if method == "files.completeUploadExternal":
            shared = []
            for entry in _decode(args.get("files")) or []:
                file = self.files.setdefault(entry["id"], {"id": entry["id"]})
                file.update(title=entry.get("title"), channel=args.get("channel_id"),
                            initial_comment=args.get("initial_comment"))
                shared.append({"id": entry["id"], "title": entry.get("title")})
            return {"ok": True, "files": shared}
        if method == "conversations.open":
            users = str(args.get("users", ""))
            return {"ok": True, "channel": {"id": "D" + users.split(",")[0].removeprefix("U")}}
        if method == "conversations.create":
            return {"ok": True, "channel": {"id": f"C0NEW{next(self._ts):06d}", "name": args.get("name")}}
        if method in ("views.open", "views.update", "views.push"):
            view = _decode(args.get("view")) or {}
            view_id = args.get("view_id") or f"V{next(self._ts):08d}"
            return {"ok": True, "view": {**view, "id": view_id, "hash": f"h{next(self._ts)}"}}
        return {"ok": True}

    def _now(self) -> datetime | float:
        return self.clock() if self.clock else time.monotonic()


async def _args(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return args


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
