"""web/roomrelay.js in headless Chromium against two backends on one Redis.

A test page (written here, next to a link to web/roomrelay.js) connects with
the two backends' URLs, ws1 first. The scenario, driven over DevTools:
1. the page publishes three messages on ws1;
2. ws1 is SIGKILLed; while the page waits to reconnect, another client on ws2
   publishes three, and the page publishes one (queued: no connection);
3. the page reconnects to ws2 with since=3: the three it missed are replayed,
   then its queued publish goes out;
4. the page publishes one more and drops its own connection at once, so the
   ack never reaches it; its next attempt (ws1) fails, the one after (ws2)
   resumes and resends the publish under the same id: acked with the
   original seq, published once;
5. the other client publishes one more, live.
The page must end with the other client's sequence, gap-free, each message
once. Chromium is driven as in test_interop.py (its helpers are reused).

Then the demo as a person gets it: scripts/run.sh (`make run`) on free ports,
its printed page URL in Chromium, and a drain of the backend serving it: the
page reconnects through HAProxy to another backend and goes on.
"""
import asyncio
import atexit
import json
import os
import random
import signal
import socket
import sys
import time
import unittest
import urllib.parse
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402
import test_interop as interop  # noqa: E402

WEB = os.path.join(harness.ROOT, "web")
ROOM = "web.client-1"
STEP_TIMEOUT = 20
BACKOFF_INITIAL_MS = 800

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>roomrelay.js test page</title>
<script type="module">
import { connect } from "./roomrelay.js";
const q = new URLSearchParams(location.search);
const T = window.T = { events: [], messages: [], acks: [], failures: [] };
const c = T.client = connect(JSON.parse(q.get("urls")), {
    room: q.get("room"), token: q.get("token"), backoffInitialMs: Number(q.get("backoff")),
    backoffMaxMs: 5000 });
for (const type of ["connecting", "welcome", "joined", "ack", "error", "close", "gap", "migrate"]) {
    c.on(type, (d) => T.events.push({ event: type, ...d }));
}
c.on("message", (m) => T.messages.push(m));
T.publish = (data) => c.publish(data).then((a) => { T.acks.push(a); return a; },
                                           (e) => { T.failures.push(String(e)); throw e; });
// Publishes, then drops the connection before the server can answer: the
// browser delivers nothing more on a socket it is closing.
T.publishAndDrop = (data) => { T.publish(data); c._ws.close(4000, "test drop"); return true; };
T.state = () => ({ state: c.state, instance: c.instance, lastSeq: c.lastSeq,
                   pending: c.pending, acks: T.acks.length, messages: T.messages.length,
                   failures: T.failures });
</script>
"""


class DevTools:
    """One page's DevTools session: evaluates expressions in the page."""

    def __init__(self, cdp):
        self.cdp = cdp
        self.n = 0

    async def eval(self, expression, await_promise=False):
        self.n += 1
        await self.cdp.send(json.dumps({"id": self.n, "method": "Runtime.evaluate", "params": {
            "expression": expression, "returnByValue": True, "awaitPromise": await_promise}}))
        while True:
            reply = json.loads(await self.cdp.recv())
            if reply.get("id") == self.n:
                break
        result = reply.get("result", {})
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def until(self, what, pred, timeout=STEP_TIMEOUT):
        """Polls T.state() until pred(state) holds."""
        deadline = time.monotonic() + timeout
        while True:
            st = await self.eval("window.T ? T.state() : null")
            if st is not None and pred(st):
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"page: timed out waiting for {what}; state {st}")
            await asyncio.sleep(0.05)


def page_target(devtools_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5) as r:
        return next(t for t in json.load(r) if t["type"] == "page")["webSocketDebuggerUrl"]


def metric(port, name):
    _, _, body = harness.http_get(port, "/metrics")
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class ResumeAcrossBackends(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.start_redis()
        cls.addClassCleanup(cls.redis.stop)
        # A token, not --allow-anonymous: publish ids are de-duplicated per
        # sub, and an anonymous sub changes with every connection.
        cls.keys = K.KeySet(harness.tmpdir())
        args = ["--hmac-secret-file", cls.keys.hmac_file, "--publish-rate", "0", "--redis",
                f"127.0.0.1:{cls.redis.port}"]
        cls.ws1 = harness.start_backend(args, instance="ws1")
        cls.ws2 = harness.start_backend(args, instance="ws2")
        for b in (cls.ws1, cls.ws2):
            harness.wait_for(lambda: harness.http_get(b.port, "/health")[0] == 200,
                             what=f"{b.name} /health ok")
        site = harness.tmpdir()
        with open(os.path.join(site, "page.html"), "w") as f:
            f.write(PAGE)
        os.symlink(os.path.join(WEB, "roomrelay.js"), os.path.join(site, "roomrelay.js"))
        http_port = harness.free_port()
        http = harness.Proc("http-server", [interop.PY, "-m", "http.server", "--bind",
                                            "127.0.0.1", "--directory", site, str(http_port)])
        cls.addClassCleanup(http.stop)
        harness.wait_for(lambda: harness.port_open(http_port), what="the test page's server")
        urls = [f"ws://127.0.0.1:{b.port}/ws" for b in (cls.ws1, cls.ws2)]
        query = urllib.parse.urlencode({"urls": json.dumps(urls), "room": ROOM,
                                        "backoff": BACKOFF_INITIAL_MS,
                                        "token": K.hs256(cls.keys, sub="page")})
        started = time.monotonic()
        cls.chromium = interop.start_chromium(f"http://127.0.0.1:{http_port}/page.html?{query}")
        cls.addClassCleanup(cls.chromium.stop)
        try:
            asyncio.run(cls.scenario())
        except BaseException as e:
            raise AssertionError(f"{e}\nchromium:\n{interop.chromium_log(cls.chromium)}\n"
                                 f"ws2:\n{cls.ws2.output()[-3000:]}") from e
        cls.duplicates_on_ws2 = metric(cls.ws2.port, "roomrelay_messages_duplicate_total")
        cls.addClassCleanup(cls.stop_ws2)
        print(f"# scenario done in {time.monotonic() - started:.2f} s", flush=True)

    @classmethod
    def stop_ws2(cls):
        rc = cls.ws2.stop()
        if rc != 0:
            raise AssertionError(f"ws2 exited with {rc}:\n" + cls.ws2.output()[-4000:])

    @classmethod
    async def scenario(cls):
        async with websockets.connect(page_target(cls.chromium.devtools_port),
                                      max_size=None) as cdp:
            page = DevTools(cdp)
            await page.until("welcome from ws1", lambda s: s["instance"] == "ws1")
            cls.first_acks = [await page.eval(f"T.publish({{n: {i}}})", await_promise=True)
                              for i in range(3)]

            other, cls.other_welcome = await B.connect(
                cls.ws2.port, ROOM, query=f"access_token={K.hs256(cls.keys, sub='other')}")
            cls.ws1.kill(signal.SIGKILL)
            cls.ws1.p.wait()
            await page.until("the drop noticed", lambda s: s["state"] == "reconnecting")
            for i in range(3):
                await B.send_json(other, type="publish", room=ROOM, data={"other": i},
                                  id=f"o-{i}")
            await page.eval("T.publish({n: 'offline'}), true")
            await page.until("resumed on ws2 and the queued publish acked",
                             lambda s: s["instance"] == "ws2" and s["acks"] == 4)

            await page.eval("T.publishAndDrop({n: 'dropped'})")
            await page.until("reconnected after the drop and the resend acked",
                             lambda s: s["state"] == "open" and s["acks"] == 5)
            await B.send_json(other, type="publish", room=ROOM, data={"other": "live"},
                              id="o-live")
            await page.until("the live message", lambda s: s["messages"] == 9)

            cls.other_messages = []
            while len(cls.other_messages) < 6:
                m = await B.recv_json(other)
                if m["type"] == "message":
                    cls.other_messages.append(m)
            await other.close()
            cls.final = await page.eval("T.state()")
            cls.events = await page.eval("T.events")
            cls.messages = await page.eval("T.messages")
            cls.acks = await page.eval("T.acks")
            cls.dropped_dups = await page.eval("T.client.duplicatesDropped")

    def events_of(self, kind):
        return [e for e in self.events if e["event"] == kind]

    def test_the_page_holds_seqs_1_to_9_each_once_in_order(self):
        self.assertEqual([m["seq"] for m in self.messages], list(range(1, 10)))
        self.assertEqual(self.final["lastSeq"], 9)

    def test_the_page_and_a_member_on_the_other_backend_hold_identical_messages(self):
        self.assertEqual(self.other_welcome["seq"], 3)
        self.assertEqual(self.messages[3:], self.other_messages)

    def test_the_server_sent_no_seq_twice(self):
        self.assertEqual(self.dropped_dups, 0)

    def test_the_page_moved_from_ws1_to_ws2_and_resumed_with_since(self):
        welcomes = [(w["instance"], w["reconnected"]) for w in self.events_of("welcome")]
        self.assertEqual(welcomes, [("ws1", False), ("ws2", True), ("ws2", True)])
        urls = [e["url"].split("/ws", 1)[1] for e in self.events_of("connecting")]
        self.assertEqual(urls, [f"?room={ROOM}", f"?room={ROOM}&since=3",
                                f"?room={ROOM}&since=7", f"?room={ROOM}&since=7"])
        joined = [(j["seq"], j["recovered"], j["complete"]) for j in self.events_of("joined")]
        self.assertEqual(joined, [(6, 3, True), (8, 1, True)])
        self.assertEqual(self.events_of("gap"), [])

    def test_the_attempt_on_the_dead_backend_failed_and_backed_off_longer(self):
        closes = [(c["code"], c["willReconnect"]) for c in self.events_of("close")]
        self.assertEqual(closes, [(1006, True), (4000, True), (1006, True)])
        first, _, failed = [c["delayMs"] for c in self.events_of("close")]
        self.assertTrue(BACKOFF_INITIAL_MS / 2 <= first <= BACKOFF_INITIAL_MS, first)
        self.assertTrue(BACKOFF_INITIAL_MS <= failed <= 2 * BACKOFF_INITIAL_MS, failed)

    def test_acks_name_the_seq_of_each_publish(self):
        self.assertEqual([a["seq"] for a in self.first_acks], [1, 2, 3])
        by_data = {json.dumps(m["data"]): m["seq"] for m in self.messages}
        self.assertEqual([a["seq"] for a in self.acks], [1, 2, 3, 7, 8])
        self.assertEqual(by_data[json.dumps({"n": "offline"})], 7)
        self.assertEqual(by_data[json.dumps({"n": "dropped"})], 8)
        self.assertEqual(len({a["id"] for a in self.acks}), 5)
        self.assertEqual(self.final["pending"], 0)
        self.assertEqual(self.final["failures"], [])

    def test_the_unacked_publish_was_resent_and_published_once(self):
        self.assertEqual([a["sent"] for a in self.acks], [1, 1, 1, 1, 2])
        self.assertEqual([m["data"] for m in self.messages].count({"n": "dropped"}), 1)
        self.assertEqual(self.duplicates_on_ws2, 1)


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_block():
    """A port p with p, p+1, p+2 (backends) and p+100..p+102 (agent checks)
    free; below the ephemeral range, where no outgoing connection takes one."""
    while True:
        base = random.randrange(20000, 32000)
        if all(bindable(base + d) for d in (0, 1, 2, 100, 101, 102)):
            return base


class DemoSurvivesADrain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws_port = free_port_block()
        cls.http_port = harness.free_port()
        env = {"RR_HTTP_PORT": str(cls.http_port), "RR_WEB_PORT": str(harness.free_port()),
               "RR_SPOA_PORT": str(harness.free_port()),
               "RR_METRICS_PORT": str(harness.free_port()),
               "RR_REDIS_PORT": str(harness.free_port()), "RR_WS_PORT": str(cls.ws_port),
               "RR_RUN_DIR": harness.tmpdir(), "RR_DRAIN_TIMEOUT": "1"}
        cls.run_dir = env["RR_RUN_DIR"]
        started = time.monotonic()
        # In a session of its own: if this test dies before run.sh's trap can
        # run (the harness SIGKILLs it at exit), its whole group goes too.
        cls.stack = harness.Proc("make-run", ["setsid", os.path.join(harness.ROOT, "scripts",
                                                                     "run.sh")], env=env)
        atexit.register(kill_group, cls.stack.p.pid)
        cls.addClassCleanup(cls.stack.stop)
        harness.wait_for(lambda: "Ctrl-C stops everything" in cls.stack.output() or
                         not cls.stack.alive(), timeout=30, what="scripts/run.sh to be ready")
        if not cls.stack.alive():
            raise AssertionError("scripts/run.sh exited:\n" + cls.stack.output())
        pages = [w for w in cls.stack.output().split() if w.startswith("http://") and "#ws=" in w]
        cls.chromium = interop.start_chromium(pages[0])
        cls.addClassCleanup(cls.chromium.stop)
        try:
            asyncio.run(cls.scenario())
        except BaseException as e:
            raise AssertionError(f"{e}\nrun.sh:\n{cls.stack.output()[-3000:]}") from e
        # What Ctrl-C does: the script's trap stops every process it started.
        cls.stack.stop(signal.SIGINT)
        cls.still_open = [p for p in (cls.http_port, cls.ws_port, cls.ws_port + 1, cls.ws_port + 2)
                          if harness.port_open(p)]
        print(f"# demo scenario done in {time.monotonic() - started:.2f} s", flush=True)

    @classmethod
    async def scenario(cls):
        async with websockets.connect(page_target(cls.chromium.devtools_port),
                                      max_size=None) as cdp:
            page = DevTools(cdp)
            state = ("window.roomrelay && {state: roomrelay.state, instance: roomrelay.instance,"
                     " lastSeq: roomrelay.lastSeq, messages: [...document.querySelectorAll("
                     "'#messages li')].map((x) => x.textContent), log: [...document."
                     "querySelectorAll('#log li')].map((x) => x.textContent.trim().replace(/^\\S+ "
                     "\\S+ /, ''))}")

            async def until(what, pred):
                deadline = time.monotonic() + STEP_TIMEOUT
                while True:
                    st = await page.eval(state)
                    if st and pred(st):
                        return st
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"demo page: timed out waiting for {what}; {st}")
                    await asyncio.sleep(0.05)

            cls.before = await until("welcome", lambda s: s["state"] == "open")
            for text in ("one", "two"):
                await page.eval(f"roomrelay.publish({{text: '{text}'}})", await_promise=True)
            port = cls.ws_port + int(cls.before["instance"][2:]) - 1
            with open(os.path.join(cls.run_dir, "admin.token")) as f:
                token = f.read().strip()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/admin/drain", method="POST",
                                         headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                cls.drain_status = r.status
            await until("the move to another backend",
                        lambda s: s["state"] == "open" and s["instance"] != cls.before["instance"])
            await page.eval("roomrelay.publish({text: 'three'})", await_promise=True)
            cls.after = await until("the last message", lambda s: len(s["messages"]) == 3)

    def test_the_page_was_served_by_one_of_the_three_backends(self):
        self.assertIn(self.before["instance"], ("ws1", "ws2", "ws3"))
        self.assertEqual(self.before["log"], ["connecting to /ws?room=lobby",
                                              f"joined on {self.before['instance']}, session "
                                              + self.before["log"][1].split("session ")[1]])

    def test_the_page_moved_to_another_backend_and_kept_its_messages(self):
        self.assertEqual(self.drain_status, 200)
        self.assertNotEqual(self.after["instance"], self.before["instance"])
        self.assertEqual(self.after["lastSeq"], 3)
        self.assertEqual([m.strip() for m in self.after["messages"]],
                         ["#1 alice one", "#2 alice two", "#3 alice three"])
        log = self.after["log"]
        self.assertIn("connecting to /ws?room=lobby&since=2", log)
        self.assertIn(f"resumed on {self.after['instance']}", " ".join(log))

    def test_stopping_run_sh_stops_everything_it_started(self):
        self.assertEqual(self.still_open, [])


if __name__ == "__main__":
    tap.main()
