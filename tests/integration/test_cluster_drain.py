"""Drain in a cluster (DESIGN.md §6), from its three triggers: roomrelayctl
drain (the control channel), POST /admin/drain, SIGTERM.

A draining backend is `draining` in the registry at once, says so on
/health and its agent-check port, sends each WebSocket `migrate` and closes
it with 1012 (paced by --drain-rate). Its members reconnect to the other
backend with since=<last seq> and get every message published meanwhile,
without a gap or a duplicate, from the shared history.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

import websockets

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402

CTL = harness.binary("roomrelayctl")
ADMIN_TOKEN = "drain-admin-token-0123456789"


def healthy(port):
    status, _, body = harness.http_get(port, "/health")
    return status == 200 and '"ok"' in body


def agent_check(port):
    with socket.create_connection(("127.0.0.1", port), timeout=B.TIMEOUT) as s:
        return B.closed_by_server(s).decode()


async def close_code(ws):
    """The very next thing on ws is the server's close: its code."""
    try:
        m = await asyncio.wait_for(ws.recv(), B.TIMEOUT)
    except websockets.exceptions.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else None
    raise AssertionError(f"expected the close right after migrate, got {m}")


class Drain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = K.KeySet(harness.tmpdir())
        cls.redis = harness.start_redis()
        cls.admin_file = os.path.join(harness.tmpdir(), "admin.token")
        with open(cls.admin_file, "w") as f:
            f.write(ADMIN_TOKEN + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def setUp(self):
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.stop(signal.SIGKILL)

    def backend(self, instance, extra=()):
        agent = harness.free_port()
        args = ["--hmac-secret-file", self.keys.hmac_file, "--publish-rate", "0",
                "--redis", f"127.0.0.1:{self.redis.port}", "--heartbeat-interval", "1",
                "--admin-token-file", self.admin_file,
                "--agent-check-listen", f"127.0.0.1:{agent}"] + list(extra)
        b = harness.start_backend(args, instance=instance)
        b.agent_port = agent
        self.procs.append(b)
        harness.wait_for(lambda: healthy(b.port), what=f"{instance} /health ok")
        return b

    def ctl(self, *args):
        r = subprocess.run([CTL, "--redis", f"127.0.0.1:{self.redis.port}", *args],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def registry(self):
        return {e["instance"]: e for e in json.loads(self.ctl("--json", "status"))}

    def state(self, instance):
        return self.registry().get(instance, {}).get("state")

    async def connect(self, backend, room, sub, since=None):
        q = f"access_token={K.hs256(self.keys, sub=sub)}"
        if since is not None:
            q += f"&since={since}"
        return await B.connect(backend.port, room, query=q)

    async def migrated(self, ws, seqs):
        """Reads the room's messages into seqs until `migrate`, which must be
        followed by the close 1012 and nothing else. Returns the migrate."""
        while True:
            m = await B.recv_json(ws)
            if m["type"] == "message":
                seqs.append(m["seq"])
            elif m["type"] == "migrate":
                self.assertEqual(sorted(m), ["reason", "reconnect_after_ms", "type"])
                self.assertTrue(100 <= m["reconnect_after_ms"] < 1000, m)
                self.assertEqual(await close_code(ws), 1012)
                return m
            elif m["type"] != "member":
                raise AssertionError(f"unexpected {m}")

    def run_drain(self, trigger, drain_rate="0", members=3, total=60):
        """Members on A, a publisher on B; the drain of A, started by
        trigger() once messages flow, moves every member to B without a gap."""
        room = f"drain-{trigger.__name__}"
        a = self.backend("dra-" + trigger.__name__[:8], ["--drain-rate", drain_rate])
        b = self.backend("drb-" + trigger.__name__[:8])
        subs = [f"m{i}" for i in range(members)]

        async def body():
            conns = [(await self.connect(a, room, s))[0] for s in subs]
            pub, _ = await self.connect(b, room, "publisher")
            seqs = {s: [] for s in subs}
            flowing = asyncio.Event()
            migrate_at = []

            async def publish():
                for n in range(1, total + 1):
                    await B.send_json(pub, type="publish", room=room, data=n, id=f"p-{n}")
                    if n == 10:
                        flowing.set()
                    await asyncio.sleep(0.02)
                while True:
                    m = await B.recv_json(pub)
                    if m["type"] == "ack" and m["id"] == f"p-{total}":
                        self.assertEqual(m["seq"], total)
                        return

            async def member(sub, ws):
                await self.migrated(ws, seqs[sub])
                migrate_at.append(time.monotonic())
                last = seqs[sub][-1] if seqs[sub] else 0
                ws2, welcome = await self.connect(b, room, sub, since=last)
                self.assertEqual(welcome["instance"], b.instance)
                joined = await B.expect_json(ws2, type="joined", room=room)
                self.assertTrue(joined["complete"], joined)
                while not seqs[sub] or seqs[sub][-1] < total:
                    m = await B.recv_json(ws2)
                    if m["type"] == "message":
                        seqs[sub].append(m["seq"])
                await ws2.close()

            tasks = [asyncio.create_task(member(s, ws)) for s, ws in zip(subs, conns)]
            pub_task = asyncio.create_task(publish())
            await flowing.wait()
            await asyncio.to_thread(trigger, a)
            await asyncio.gather(*tasks, pub_task)
            for s in subs:
                self.assertEqual(seqs[s], list(range(1, total + 1)), s)
            await pub.close()
            return migrate_at

        a.instance = "dra-" + trigger.__name__[:8]
        b.instance = "drb-" + trigger.__name__[:8]
        return a, b, B.run(body())

    def test_roomrelayctl_drain_migrates_every_member_to_the_other_backend_without_a_gap(self):
        def ctl_drain(a):
            self.ctl("drain", a.instance)
            harness.wait_for(lambda: self.state(a.instance) == "draining",
                             what="the registry to show the backend draining")
        a, b, _ = self.run_drain(ctl_drain)
        self.assertEqual(self.state(a.instance), "draining")
        self.assertEqual(self.state(b.instance), "up")
        self.assertEqual(harness.http_get(a.port, "/health")[0], 503)
        self.assertEqual(agent_check(a.agent_port), "drain\n")
        self.assertEqual(agent_check(b.agent_port), "up\n")
        self.assertEqual(B.metrics(a.port)['roomrelay_closes_total{code="1012"}'], 3)
        harness.wait_for(lambda: self.registry()[a.instance]["conns"] == 0,
                         what="the drained backend to report no connection")
        self.ctl("undrain", a.instance)
        harness.wait_for(lambda: self.state(a.instance) == "up" and healthy(a.port),
                         what="undrain to bring the backend back up")
        self.assertEqual(agent_check(a.agent_port), "up\n")

    def test_admin_drain_paces_migrates_at_the_drain_rate(self):
        def admin_drain(a):
            st, _, body = B.http_raw(a.port, "POST", "/admin/drain",
                                     [("Authorization", "Bearer " + ADMIN_TOKEN)])
            self.assertEqual((st, json.loads(body)), (200, {"state": "draining"}))
        a, _, migrate_at = self.run_drain(admin_drain, drain_rate="10", members=5)
        # 10 a second is one per tenth of a second: five take at least 0.4 s.
        self.assertGreaterEqual(max(migrate_at) - min(migrate_at), 0.3)
        self.assertEqual(self.state(a.instance), "draining")

    def test_sigterm_migrates_every_member_then_exits_0_and_leaves_the_registry(self):
        def sigterm(a):
            a.kill(signal.SIGTERM)
        a, b, _ = self.run_drain(sigterm)
        self.assertEqual(a.wait_exit(timeout=20), 0)
        self.assertNotIn(a.instance, self.registry())
        self.assertEqual(self.state(b.instance), "up")

    def test_at_the_drain_timeout_the_connections_not_migrated_yet_are_closed_1001(self):
        a = self.backend("dr-timeout", ["--drain-rate", "1", "--drain-timeout", "2"])

        async def body():
            conns = [(await self.connect(a, "drain-timeout", f"t{i}"))[0] for i in range(5)]
            st, _, _ = B.http_raw(a.port, "POST", "/admin/drain",
                                  [("Authorization", "Bearer " + ADMIN_TOKEN)])
            self.assertEqual(st, 200)

            async def outcome(ws):
                while True:
                    try:
                        m = await B.recv_json(ws, timeout=10)
                    except websockets.exceptions.ConnectionClosed as e:
                        return e.rcvd.code
                    if m["type"] == "migrate":
                        return await close_code(ws)
            return await asyncio.gather(*(outcome(ws) for ws in conns))
        codes = B.run(body())
        # One a second: the first at once, the second after a second; the
        # timeout (2 s) closes the rest.
        self.assertTrue(2 <= codes.count(1012) <= 3, codes)
        self.assertEqual(codes.count(1001), 5 - codes.count(1012), codes)


if __name__ == "__main__":
    tap.main()
