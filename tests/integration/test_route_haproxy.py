"""Room routing through real HAProxy 2.6 (the shipped haproxy/ config), real
roomrelay-spoa agents with a real Redis, and real roomrelay-backends.

Each client is a raw WebSocket handshake through HAProxy; the backend it
landed on is the `instance` of its `welcome`. The backends run with
--redis none and --trusted-proxy 127.0.0.1/32 (identity from HAProxy's
X-RR-Sub): they do not heartbeat into the registry themselves yet, so the
test writes the registry records (HSET rr:inst:wsN, ZADD rr:instances) the
way a backend's heartbeat would.

"Agent down" for routing: with the shipped config an agent that is down also
fails authentication closed (401), so routing without the agent's answer is
tested with an agent that gives none (--redis none, and Redis stopped):
HAProxy's stick table on the room keeps members together.
"""
import asyncio
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402

SERVERS = ("ws1", "ws2", "ws3")
CONCURRENCY = 64


async def handshake(port, room, token, timeout=10):
    """One WebSocket handshake through HAProxy. Returns (status, instance):
    the HTTP status, and for a 101 the `instance` of the welcome."""
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        w.write((f"GET /ws?room={room}&access_token={token} HTTP/1.1\r\n"
                 f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            return status, None
        b0, b1 = await asyncio.wait_for(r.readexactly(2), timeout)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await r.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await r.readexactly(8), "big")
        msg = json.loads(await asyncio.wait_for(r.readexactly(n), timeout))
        assert msg["type"] == "welcome", msg
        return status, msg["instance"]
    finally:
        w.close()


def land(plan, token):
    """Runs handshakes [(haproxy port, room), ...] CONCURRENCY at a time and
    returns {room: [instance, ...]} (in plan order per room)."""
    async def run():
        sem = asyncio.Semaphore(CONCURRENCY)
        out = [None] * len(plan)

        async def one(i, port, room):
            async with sem:
                st, inst = await handshake(port, room, token)
                assert st == 101, (room, st)
                out[i] = inst
        await asyncio.gather(*(one(i, p, r) for i, (p, r) in enumerate(plan)))
        return out
    found = asyncio.run(run())
    rooms = {}
    for (_, room), inst in zip(plan, found):
        rooms.setdefault(room, []).append(inst)
    return rooms


class Cluster:
    """Redis, three backends ws1..ws3 registered in it, and `n` HAProxy +
    agent pairs."""

    def __init__(self, pairs=1, redis=True):
        """redis=False: no Redis at all, the agents run with --redis none."""
        self.dir = harness.tmpdir()
        self.keys = K.KeySet(self.dir)
        self.redis = harness.start_redis() if redis else None
        self.backends = {}
        for name in SERVERS:
            self.backends[name] = harness.start_backend(
                ["--trusted-proxy", "127.0.0.1/32", "--log-level", "info"], instance=name)
        if self.redis:
            self.register()
        self.pairs = []
        env = {}
        for i, name in enumerate(SERVERS):
            env[f"RR_WS{i + 1}_ADDR"] = f"127.0.0.1:{self.backends[name].port}"
        for _ in range(pairs):
            mport = harness.free_port()
            redis_arg = f"127.0.0.1:{self.redis.port}" if redis else "none"
            agent = harness.start_agent(
                self.keys.agent_args() + ["--claim-var", "rooms", "--redis", redis_arg,
                                          "--registry-refresh", "200", "--log-level", "info"],
                metrics_port=mport)
            hap = harness.start_haproxy(agent.port, extra_env=env)
            self.pairs.append((agent, hap))
        for agent, hap in self.pairs:
            harness.wait_for(lambda: harness.server_state(hap, "be_spoa", "spoa1") == "UP",
                             what="HAProxy to see the agent UP")
            for name in SERVERS:
                harness.wait_for(lambda: harness.server_state(hap, "be_ws", name) == "UP",
                                 what=f"HAProxy to see {name} UP")
            if redis:
                self.wait_ready(agent)

    def wait_ready(self, agent, ready=2.0):
        harness.wait_for(lambda: harness.metric(agent.metrics_port,
                                                "roomrelay_spoa_redis_ready") == ready,
                         what=f"the agent's workers to have Redis ready == {ready}")

    def register(self, draining=()):
        """Writes the registry as the backends' heartbeats would."""
        for name, b in self.backends.items():
            self.redis_cmd("HSET", f"rr:inst:{name}", "addr", "127.0.0.1", "port", b.port,
                           "server", name, "state", "draining" if name in draining else "up",
                           "conns", 0, "rooms", 0, "started", int(time.time()), "version", "test")
            self.redis_cmd("ZADD", "rr:instances", int(time.time() * 1000), name)

    def redis_cmd(self, *args):
        return harness.redis_cmd(self.redis.port, *args)

    def token(self, **kw):
        return K.hs256(self.keys, **kw)

    def port(self, i=0):
        return self.pairs[i][1].port

    def stop(self):
        for agent, hap in self.pairs:
            hap.stop()
            agent.stop()
        for b in self.backends.values():
            b.stop()
        if self.redis:
            self.redis.stop()


class RouteThroughHAProxy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(pairs=2)
        cls.tok = cls.c.token(sub="member")

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def test_1000_rooms_of_3_members_each_land_on_one_backend(self):
        rooms = [f"big-{i}" for i in range(1000)]
        plan = [(self.c.port(), r) for _ in range(3) for r in rooms]
        t0 = time.monotonic()
        landed = land(plan, self.tok)
        took = time.monotonic() - t0
        split = {r: i for r, i in landed.items() if len(set(i)) != 1}
        self.assertEqual(split, {})
        per = {s: sum(1 for i in landed.values() if i[0] == s) for s in SERVERS}
        # Bounded loads over consistent hashing: every backend gets a share.
        for s in SERVERS:
            self.assertGreater(per[s], 150, per)
        # Redis holds the same owner the clients met.
        for r in rooms[:50]:
            self.assertEqual(self.c.redis_cmd("GET", f"rr:{{{r}}}:owner"), landed[r][0])
        self.assertLess(took, 60, "3000 handshakes took too long")

    def test_two_haproxies_with_their_own_agents_agree_on_every_room(self):
        rooms = [f"both-{i}" for i in range(300)]
        # The first two members of each room race through different HAProxies.
        plan = [(self.c.port(k % 2), r) for r in rooms for k in range(4)]
        landed = land(plan, self.tok)
        split = {r: i for r, i in landed.items() if len(set(i)) != 1}
        self.assertEqual(split, {})

    def test_a_draining_instance_gets_no_new_rooms(self):
        self.c.register(draining=("ws2",))
        self.c.redis_cmd("PUBLISH", "rr:ctl", json.dumps({"op": "drain", "instance": "ws2"}))
        try:
            time.sleep(0.5)  # both agents read the registry (at once on the ctl message)
            rooms = [f"drain-{i}" for i in range(300)]
            landed = land([(self.c.port(i % 2), r) for i, r in enumerate(rooms)], self.tok)
            used = {i[0] for i in landed.values()}
            self.assertNotIn("ws2", used)
            self.assertEqual(used, {"ws1", "ws3"})
        finally:
            self.c.register()
            self.c.redis_cmd("PUBLISH", "rr:ctl",
                             json.dumps({"op": "undrain", "instance": "ws2"}))

    def test_room_of_a_draining_owner_moves_and_is_flagged(self):
        self.c.redis_cmd("SET", "rr:{movable}:owner", "ws3")
        st, inst = asyncio.run(handshake(self.c.port(), "movable", self.tok))
        self.assertEqual((st, inst), (101, "ws3"))
        self.c.register(draining=("ws3",))
        self.c.redis_cmd("PUBLISH", "rr:ctl", json.dumps({"op": "drain", "instance": "ws3"}))
        try:
            time.sleep(0.5)
            before = harness.metric(self.c.pairs[1][0].metrics_port,
                                    'roomrelay_spoa_route_room_total{result="moved"}')
            st, inst = asyncio.run(handshake(self.c.port(1), "movable", self.tok))
            self.assertEqual(st, 101)
            self.assertNotEqual(inst, "ws3")
            self.assertEqual(self.c.redis_cmd("GET", "rr:{movable}:owner"), inst)
            moved = harness.metric(self.c.pairs[1][0].metrics_port,
                                   'roomrelay_spoa_route_room_total{result="moved"}')
            self.assertEqual(moved, before + 1)
            # The other agent had ws3 cached: the owner message dropped it.
            st, again = asyncio.run(handshake(self.c.port(0), "movable", self.tok))
            self.assertEqual((st, again), (101, inst))
        finally:
            self.c.register()
            self.c.redis_cmd("PUBLISH", "rr:ctl",
                             json.dumps({"op": "undrain", "instance": "ws3"}))

    def test_room_outside_the_rooms_claim_is_403_at_haproxy(self):
        tok = self.c.token(sub="limited", rooms=["lobby:*", "T7"])
        ok = asyncio.run(handshake(self.c.port(), "lobby:eu", tok))
        self.assertEqual(ok[0], 101)
        self.assertEqual(asyncio.run(handshake(self.c.port(), "T7", tok))[0], 101)
        st, _, body = harness.http_get(self.c.port(), "/ws?room=T8&access_token=" + tok)
        self.assertEqual((st, body), (403, "forbidden_room\n"))

    def test_invalid_room_is_400_at_haproxy(self):
        for room in ("", "a%20b", "x" * 65, "a$b"):
            with self.subTest(room=room):
                st, h, body = harness.http_get(self.c.port(),
                                               f"/ws?room={room}&access_token={self.tok}")
                self.assertEqual((st, h.get("x-rr-room-err")), (400, "invalid_room"), body)

    def test_demo_endpoint_is_not_routed(self):
        st, _, body = harness.http_get(self.c.port(), "/demo?access_token=" + self.tok)
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["sub"], "member")


class RoutingWithoutTheAgentsAnswer(unittest.TestCase):
    """The agent authenticates but names no server (--redis none): the stick
    table on url_param(room) keeps each room's members on one backend."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(redis=False)

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def test_members_of_a_room_still_land_together(self):
        tok = self.c.token(sub="m")
        rooms = [f"stick-{i}" for i in range(150)]
        # Members one after the other, so the first one's server is in the table.
        landed = land([(self.c.port(), r) for r in rooms], tok)
        landed2 = land([(self.c.port(), r) for _ in range(2) for r in rooms], tok)
        for r in rooms:
            self.assertEqual(set(landed[r] + landed2[r]), {landed[r][0]}, r)
        # leastconn spread the rooms.
        self.assertGreater(len({i[0] for i in landed.values()}), 1)
        self.assertGreaterEqual(
            harness.metric(self.c.pairs[0][0].metrics_port,
                           'roomrelay_spoa_route_room_total{result="off"}'),
            450)


class RedisDown(unittest.TestCase):
    def setUp(self):
        self.c = Cluster()

    def tearDown(self):
        self.c.stop()

    def test_token_still_checked_routing_falls_back_and_recovers(self):
        tok = self.c.token(sub="rd")
        agent = self.c.pairs[0][0]
        rport = self.c.redis.port
        self.c.redis.stop()
        self.c.wait_ready(agent, 0.0)
        st, _, body = harness.http_get(self.c.port(), "/demo", {"Authorization": "Bearer " + tok})
        self.assertEqual(st, 200, body)
        before = harness.metric(agent.metrics_port,
                                'roomrelay_spoa_route_room_total{result="unavailable"}')
        rooms = [f"down-{i}" for i in range(50)]
        landed = land([(self.c.port(), r) for r in rooms], tok)
        landed2 = land([(self.c.port(), r) for _ in range(2) for r in rooms], tok)
        for r in rooms:
            self.assertEqual(set(landed[r] + landed2[r]), {landed[r][0]}, r)
        self.assertEqual(
            harness.metric(agent.metrics_port,
                           'roomrelay_spoa_route_room_total{result="unavailable"}'),
            before + 150)
        # Redis comes back (empty): the agent reconnects and routes again.
        self.c.redis = harness.start_redis(port=rport)
        self.c.register()
        self.c.wait_ready(agent)
        # The agent re-reads the registry on its own schedule (--registry-refresh):
        # until it has, a new room gets no owner and HAProxy's fallback serves it.
        # Wait for a room to be placed and claimed again.
        tries = []

        def routed():
            room = f"after-redis-{len(tries)}"
            tries.append(room)
            st, inst = asyncio.run(handshake(self.c.port(), room, tok))
            return st == 101 and self.c.redis_cmd("GET", f"rr:{{{room}}}:owner") == inst

        harness.wait_for(routed, timeout=15, what="the agent to place rooms again")


if __name__ == "__main__":
    tap.main()
