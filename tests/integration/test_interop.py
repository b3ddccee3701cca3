"""Interop: node `ws`, python `websockets` and headless Chromium in one room.

One ASan roomrelay-backend checks real tokens (HS256 made by node's `jose`
and by python3-jwt, ES256 from the JWKS). Three clients of different
implementations (tests/interop/) connect to the same room at once, each
sending its token the way its kind of client can: an Authorization header
(node), the access_token query argument (python), a `bearer.<jwt>`
subprotocol item (the browser). Each one asks for presence until it sees all
three, publishes PUBLISH messages with a non-ASCII string in them (the last
one 15 KB), and stops once it has every message of the room and an ack for
each of its own. The run is done twice: without and with permessage-deflate,
which all three offer.

Chromium is driven over its DevTools protocol rather than with --dump-dom:
--virtual-time-budget runs a virtual clock that skips ahead whenever the page
is idle, and a page waiting on a WebSocket for the other clients is idle, so
the DOM was dumped after ~1 s of real time, the page's own 5 s timer already
fired and nothing received. Polling the page's <pre id=result> over DevTools
waits in real time, and stops as soon as the page has written its result.
"""
import asyncio
import json
import os
import sys
import time
import unittest
import urllib.parse
import urllib.request

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402

PY = "/usr/bin/python3"
INTEROP = os.path.join(harness.ROOT, "tests", "interop")
ROOM = "interop.room-1"
PUBLISH = 4
TEXT = "héllo ✓ 🎲"
CLIENT_TIMEOUT = 30
SUBS = {"node": "node-alice", "python": "py-bob", "browser": "browser-carol"}
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # No host name but 127.0.0.1 resolves: Chromium fetches nothing from elsewhere on its own.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
]


def script_args(label, ws_url):
    return {"url": ws_url, "room": ROOM, "label": label, "publish": str(PUBLISH),
            "expect": str(PUBLISH * len(SUBS)), "members": str(len(SUBS)),
            "timeout": str(CLIENT_TIMEOUT)}


def as_argv(args):
    return [x for k, v in args.items() for x in (f"--{k}", v)]


def json_lines(text):
    """The JSON objects a client printed, in order; its other output (stderr
    is in the same log) is left out."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def start_chromium(page_url):
    profile = harness.tmpdir()
    proc = harness.Proc("chromium", ["chromium"] + CHROMIUM_FLAGS +
                        [f"--user-data-dir={profile}", page_url])
    active = os.path.join(profile, "DevToolsActivePort")

    def devtools_ready():
        if not proc.alive():
            raise RuntimeError("chromium exited:\n" + proc.output())
        with open(active) as f:
            return len(f.read().splitlines()) == 2
    try:
        harness.wait_for(devtools_ready, timeout=20, what="chromium's DevToolsActivePort")
    except BaseException:
        proc.stop()
        raise
    with open(active) as f:
        proc.devtools_port = int(f.readline())
    return proc


def chromium_log(proc):
    """Chromium's log without its complaints about the D-Bus this machine has not."""
    return "\n".join(x for x in proc.output().splitlines() if "dbus" not in x)[-3000:]


async def _poll_result(devtools_port, timeout, others):
    with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5) as r:
        pages = [t for t in json.load(r) if t["type"] == "page"]
    async with websockets.connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as cdp:
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline and all(p.p.poll() in (None, 0) for p in others):
            n += 1
            await cdp.send(json.dumps({"id": n, "method": "Runtime.evaluate", "params": {
                "expression": "document.getElementById('result')?.textContent || ''",
                "returnByValue": True}}))
            while True:
                reply = json.loads(await cdp.recv())
                if reply.get("id") == n:
                    break
            text = reply.get("result", {}).get("result", {}).get("value", "")
            if text:
                return json.loads(text)
            await asyncio.sleep(0.1)
    return {"ok": False, "error": "no result in the page's DOM", "lines": []}


def browser_result(proc, timeout, others):
    """Polls the page's <pre id=result> over DevTools until the page wrote it,
    or one of the other clients failed (then the page would wait in vain)."""
    return asyncio.run(_poll_result(proc.devtools_port, timeout, others))


class InteropRoom:
    """The run and its checks; the subclasses say how the backend is set up."""
    backend_args = []
    extension = ""

    @classmethod
    def setUpClass(cls):
        keys = K.KeySet(harness.tmpdir())
        backend = harness.start_backend(keys.agent_args() + cls.backend_args)
        cls.addClassCleanup(backend.stop)
        ws_url = f"ws://127.0.0.1:{backend.port}/ws"
        http_port = harness.free_port()
        http = harness.Proc("http-server", [PY, "-m", "http.server", "--bind", "127.0.0.1",
                                            "--directory", INTEROP, str(http_port)])
        cls.addClassCleanup(http.stop)
        harness.wait_for(lambda: harness.port_open(http_port), what="the test page's server")

        started = time.monotonic()
        node = harness.Proc("node-client", [
            "node", os.path.join(INTEROP, "node_client.mjs"),
            "--hmac-secret-file", keys.hmac_file, "--sub", SUBS["node"]]
            + as_argv(script_args("node", ws_url)))
        python = harness.Proc("py-client", [
            PY, os.path.join(INTEROP, "py_client.py"),
            "--token", K.hs256(keys, sub=SUBS["python"])]
            + as_argv(script_args("python", ws_url)))
        cls.addClassCleanup(node.stop)
        cls.addClassCleanup(python.stop)
        page_args = script_args("browser", ws_url)
        page_args["token"] = K.jwks_es256(keys, sub=SUBS["browser"])
        chromium = start_chromium(f"http://127.0.0.1:{http_port}/browser_client.html?"
                                  + urllib.parse.urlencode(page_args))
        cls.addClassCleanup(chromium.stop)
        page = browser_result(chromium, CLIENT_TIMEOUT + 5, (node, python))
        if not page["ok"]:
            node.stop()
            python.stop()
        cls.exits = {"node": node.wait_exit(CLIENT_TIMEOUT + 5),
                     "python": python.wait_exit(CLIENT_TIMEOUT + 5),
                     "browser": 0 if page["ok"] else page.get("error")}
        elapsed = time.monotonic() - started
        cls.logs = {"node": node.output(), "python": python.output(),
                    "browser": json.dumps(page) + "\n" + chromium_log(chromium)}
        cls.lines = {"node": json_lines(node.output()), "python": json_lines(python.output()),
                     "browser": page["lines"]}
        print(f"# {cls.__name__}: three clients done in {elapsed:.2f} s; extensions: " + ", ".join(
            f"{k}={cls.client(k).get('extensions')!r}" for k in SUBS), flush=True)

    @classmethod
    def client(cls, label):
        return next((x["client"] for x in cls.lines[label] if "client" in x), {})

    def frames(self, label, kind):
        return [x for x in self.lines[label] if x.get("type") == kind]

    def test_every_client_finished_its_script(self):
        failed = {label: rc for label, rc in self.exits.items() if rc != 0}
        self.assertEqual(failed, {}, "\n".join(f"{label}:\n{self.logs[label]}" for label in failed))

    def test_every_client_selected_the_roomrelay_v1_subprotocol(self):
        for label in SUBS:
            self.assertEqual(self.client(label).get("protocol"), "roomrelay.v1", label)

    def test_every_client_negotiated_the_expected_extension(self):
        for label in SUBS:
            got = self.client(label).get("extensions")
            self.assertIsInstance(got, str, label)
            self.assertEqual(got.split(";")[0], self.extension, (label, got))

    def test_every_client_was_welcomed_into_the_room_before_any_message(self):
        for label in SUBS:
            welcome = self.frames(label, "welcome")
            self.assertEqual(len(welcome), 1, label)
            self.assertEqual((welcome[0]["room"], welcome[0]["instance"], welcome[0]["seq"]),
                             (ROOM, "ws1", 0), label)

    def test_every_client_saw_all_three_subs_in_presence(self):
        want = sorted((sub, "ws1") for sub in SUBS.values())
        for label in SUBS:
            seen = [sorted((m["sub"], m["instance"]) for m in p["members"])
                    for p in self.frames(label, "presence") if p["room"] == ROOM]
            self.assertIn(want, seen, label)

    def test_every_client_got_every_message_with_seqs_1_to_n_in_order(self):
        n = PUBLISH * len(SUBS)
        for label in SUBS:
            self.assertEqual([m["seq"] for m in self.frames(label, "message")],
                             list(range(1, n + 1)), label)

    def test_every_client_got_identical_messages(self):
        reference = self.frames("node", "message")
        self.assertEqual(len(reference), PUBLISH * len(SUBS))
        for label in ("python", "browser"):
            self.assertEqual(self.frames(label, "message"), reference, label)

    def test_messages_carry_publisher_sub_and_intact_non_ascii_data(self):
        want = sorted((SUBS[p], p, i, TEXT * (1000 if i == PUBLISH - 1 else 1))
                      for p in SUBS for i in range(PUBLISH))
        for label in SUBS:
            got = sorted((m["from"], m["data"]["from"], m["data"]["i"], m["data"]["text"])
                         for m in self.frames(label, "message") if m["room"] == ROOM)
            self.assertEqual(got, want, label)

    def test_each_publishers_messages_keep_its_publish_order(self):
        for label in SUBS:
            for publisher in SUBS:
                order = [m["data"]["i"] for m in self.frames(label, "message")
                         if m["data"]["from"] == publisher]
                self.assertEqual(order, list(range(PUBLISH)), (label, publisher))

    def test_each_ack_names_the_seq_of_the_publishers_message(self):
        for label in SUBS:
            seq_of = {f"{label}-{m['data']['i']}": m["seq"]
                      for m in self.frames(label, "message") if m["data"]["from"] == label}
            acks = {a["id"]: a["seq"] for a in self.frames(label, "ack")}
            self.assertEqual(len(seq_of), PUBLISH, label)
            self.assertEqual(acks, seq_of, label)


class ThreeImplementationsInOneRoom(InteropRoom, unittest.TestCase):
    pass


class ThreeImplementationsInOneRoomWithDeflate(InteropRoom, unittest.TestCase):
    """All three offer permessage-deflate (RFC 7692) by default."""
    backend_args = ["--permessage-deflate"]
    extension = "permessage-deflate"


if __name__ == "__main__":
    tap.main()
