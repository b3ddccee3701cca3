"""A Python client that behaves like web/roomrelay.js, for cluster tests.

One connection in one room that outlives its WebSocket: it follows `migrate`
(reconnects after reconnect_after_ms), reconnects after any other loss with
capped exponential backoff and equal jitter, resumes with since=<last seq>,
and resends every publish that got no ack under the same id once welcomed
again (the server publishes an id once). Unlike roomrelay.js it keeps what
a test checks: every `message` as received (a duplicate too), every ack,
how often each publish was sent, every refusal and close.

python3-websockets (10.x, asyncio), through /usr/bin/python3.
"""
import asyncio
import collections
import json
import random
import time
import urllib.parse

import websockets

PROTOCOL = "roomrelay.v1"
# The client itself sent something wrong: the same would be sent again.
FATAL_CLOSES = {1002, 1003, 1007, 1009}


def backoff_delay(attempt, initial_s, max_s):
    """roomrelay.js's backoffDelay: half the capped exponential delay plus a
    random part of the other half."""
    cap = min(max_s, initial_s * 2 ** min(attempt, 30))
    return cap / 2 + random.random() * cap / 2


class RelayClient:
    def __init__(self, base_url, room, token, backoff_initial_s=0.5, backoff_max_s=15.0,
                 unavailable_retry_s=0.5):
        self.base_url = base_url
        self.room = room
        self.token = token
        self.backoff = (backoff_initial_s, backoff_max_s)
        self.unavailable_retry_s = unavailable_retry_s
        self.last_seq = None
        self.messages = []        # (seq, from, data) of every `message` of the room, as received
        self.welcomes = []        # (instance, seq, index in messages) of every welcome
        self.joined = []          # the `joined` answers (complete, recovered) of resumes
        self.acks = collections.defaultdict(list)  # id -> [seq of each ack]
        self.sent = collections.Counter()           # id -> times sent
        self.published = {}       # id -> data
        self.migrates = []        # reconnect_after_ms of each migrate
        self.closes = []          # close code of each lost connection (None: no close frame)
        self.refusals = []        # each failed attempt: HTTP status or exception name
        self.errors = []          # `error` messages
        self.urls = []            # the query of each attempt
        self._pending = {}        # id -> frame, until acked
        self._next_id = 0
        self._ws = None
        self._welcomed = False
        self._closed = False
        self._wake = asyncio.Event()
        self._task = None

    # ---- what a test calls ----

    def start(self):
        self._task = asyncio.create_task(self._run())

    async def close(self):
        self._closed = True
        self._wake.set()
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await self._task

    def publish(self, data, prefix="p"):
        """Queues a publish under a new id and sends it now if connected;
        returns the id."""
        self._next_id += 1
        pid = f"{prefix}-{self._next_id}"
        self.published[pid] = data
        self._pending[pid] = json.dumps({"type": "publish", "room": self.room, "data": data,
                                         "id": pid})
        if self._welcomed:
            asyncio.create_task(self._send_pending(self._ws, pid))
        return pid

    @property
    def instance(self):
        return self.welcomes[-1][0] if self.welcomes else None

    @property
    def connected(self):
        """Welcomed on a connection that is still open."""
        return self._welcomed

    @property
    def pending(self):
        return len(self._pending)

    # ---- the connection ----

    def _url(self):
        q = {"room": self.room, "access_token": self.token}
        if self.last_seq is not None:
            q["since"] = self.last_seq
        query = urllib.parse.urlencode(q)
        self.urls.append(query)
        return f"{self.base_url}?{query}"

    async def _run(self):
        failures = 0
        while not self._closed:
            migrate_ms = None
            try:
                ws = await websockets.connect(self._url(), subprotocols=[PROTOCOL],
                                              ping_interval=None, open_timeout=10,
                                              close_timeout=5, max_size=None)
            except websockets.exceptions.InvalidStatusCode as e:
                self.refusals.append(e.status_code)
                failures += 1
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
                self.refusals.append(type(e).__name__)
                failures += 1
            else:
                self._ws = ws
                welcomed, migrate_ms, code = await self._serve(ws)
                self._ws = None
                self._welcomed = False
                self.closes.append(code)
                failures = 0 if welcomed else failures + 1
                if code in FATAL_CLOSES:
                    raise AssertionError(f"fatal close {code}")
            if self._closed:
                return
            delay = (migrate_ms / 1000 if migrate_ms is not None
                     else backoff_delay(failures, *self.backoff))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _serve(self, ws):
        """Reads one connection until it closes. Returns (welcomed,
        migrate's reconnect_after_ms or None, close code)."""
        welcomed = False
        migrate_ms = None
        try:
            async for text in ws:
                m = json.loads(text)
                t = m.get("type")
                if t == "welcome":
                    welcomed = True
                    self._on_welcome(ws, m)
                elif t == "message" and m.get("room") == self.room:
                    self.messages.append((m["seq"], m["from"], m["data"]))
                    if self.last_seq is None or m["seq"] > self.last_seq:
                        self.last_seq = m["seq"]
                elif t == "ack":
                    self.acks[m["id"]].append(m["seq"])
                    self._pending.pop(m["id"], None)
                elif t == "joined":
                    self.joined.append(m)
                elif t == "migrate":
                    migrate_ms = max(0, int(m.get("reconnect_after_ms") or 0))
                    self.migrates.append(migrate_ms)
                elif t == "error":
                    self._on_error(ws, m)
        except websockets.exceptions.ConnectionClosed:
            pass
        return welcomed, migrate_ms, ws.close_code

    def _on_welcome(self, ws, m):
        self.welcomes.append((m["instance"], m["seq"], len(self.messages)))
        if self.last_seq is None:
            self.last_seq = m["seq"]
        self._welcomed = True
        # Published before the drop and not acked: the same id again is
        # answered with its original seq, or published now if it never was.
        for pid in list(self._pending):
            asyncio.create_task(self._send_pending(ws, pid))

    def _on_error(self, ws, m):
        self.errors.append(m)
        pid = m.get("id")
        if pid not in self._pending:
            return
        if m.get("code") == "unavailable":
            async def retry():
                await asyncio.sleep(self.unavailable_retry_s)
                if self._ws is ws and self._welcomed and pid in self._pending:
                    await self._send_pending(ws, pid)
            asyncio.create_task(retry())
            return
        del self._pending[pid]

    async def _send_pending(self, ws, pid):
        frame = self._pending.get(pid)
        if frame is None or ws is None:
            return
        self.sent[pid] += 1
        try:
            await ws.send(frame)
        except websockets.exceptions.ConnectionClosed:
            pass  # resent after the next welcome


async def until(pred, what, timeout=60.0):
    """Polls pred() on the running loop until true; raises after timeout."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
