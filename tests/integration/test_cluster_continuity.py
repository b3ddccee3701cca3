"""Continuity during a drain, through the whole stack (DESIGN.md §2, §6).

Redis; roomrelay-spoa with --redis; three roomrelay-backends ws1..ws3 on
that Redis (bus and registry heartbeats) trusting HAProxy (PROXY v2,
X-RR-Sub); HAProxy with the shipped haproxy/haproxy.cfg and
spoe-roomrelay.conf. Twenty members (relay_client.RelayClient, which
behaves like web/roomrelay.js) join one room through HAProxy and publish
continuously. Once messages flow, the backend that owns the room, O, is sent
SIGTERM: its members get `migrate`, reconnect through HAProxy with
since=<last seq>, the agent moves the room to another backend, and they
resend what was not acked. They go on publishing there, then stop and wait
for every ack.

Every member must end with the same messages, numbered 1..N without a gap
or a repeat, N being the number of publishes; every publish acked once,
with the seq its message carries; O must exit 0.
"""
import asyncio
import os
import random
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import keys as K  # noqa: E402
import relay_client as RC  # noqa: E402
import tap  # noqa: E402

SERVERS = ("ws1", "ws2", "ws3")
ROOM = "continuity.drain-1"
MEMBERS = 20
# Each member publishes once every 30-50 ms.
PUBLISH_GAP_S = (0.03, 0.05)
# Messages every member receives before the drain starts, and after the last
# member has moved.
BEFORE_DRAIN = 100
AFTER_MOVE = 200
STEP_TIMEOUT = 90


def metric(port, name):
    status, _, body = harness.http_get(port, "/metrics")
    assert status == 200, status
    for line in body.splitlines():
        key, _, val = line.rpartition(" ")
        if key == name:
            return float(val)
    return 0.0


def registry(redis_port):
    """{instance: state} of the live registry records."""
    out = {}
    for inst in harness.redis_cmd(redis_port, "ZRANGE", "rr:instances", 0, -1) or []:
        state = harness.redis_cmd(redis_port, "HGET", f"rr:inst:{inst}", "state")
        if state is not None:
            out[inst] = state
    return out


class ContinuityThroughADrain(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = K.KeySet(harness.tmpdir())
        cls.redis = harness.start_redis()
        cls.addClassCleanup(cls.redis.stop)
        redis = f"127.0.0.1:{cls.redis.port}"

        # --history-size (the resume and de-duplication window) far above what
        # the test publishes: a member away for longer than the window misses
        # messages by design, which is not what this test is about.
        cls.backends = {}
        hap_env = {}
        for i, name in enumerate(SERVERS, 1):
            agent_port = harness.free_port()
            b = harness.start_backend(
                ["--redis", redis, "--heartbeat-interval", "1",
                 "--agent-check-listen", f"127.0.0.1:{agent_port}",
                 "--trusted-proxy", "127.0.0.1/32", "--hmac-secret-file", cls.keys.hmac_file,
                 "--publish-rate", "0", "--history-size", "100000", "--log-level", "info"],
                instance=name)
            cls.addClassCleanup(b.stop)
            cls.backends[name] = b
            hap_env[f"RR_WS{i}_ADDR"] = f"127.0.0.1:{b.port}"
            hap_env[f"RR_WS{i}_AGENT"] = str(agent_port)
        # The agent starts once the registry holds all three up, so the
        # first registry read of each of its workers (redis_ready) has them.
        harness.wait_for(lambda: registry(cls.redis.port) == {s: "up" for s in SERVERS},
                         what="ws1..ws3 up in the registry")
        # A registry read every 60 s: within this test the agent learns of
        # the drain only from the drained backend's announcement on rr:ctl.
        cls.agent = harness.start_agent(
            cls.keys.agent_args() + ["--redis", redis, "--registry-refresh", "60000",
                                     "--log-level", "info"],
            metrics_port=harness.free_port())
        cls.addClassCleanup(cls.agent.stop)
        harness.wait_for(lambda: metric(cls.agent.metrics_port, "roomrelay_spoa_redis_ready") == 2,
                         what="both agent workers to hold Redis and the registry")
        cls.haproxy = harness.start_haproxy(cls.agent.port, extra_env=hap_env)
        cls.addClassCleanup(cls.haproxy.stop)
        harness.wait_for(lambda: harness.server_state(cls.haproxy, "be_spoa", "spoa1") == "UP",
                         what="HAProxy to see the agent UP")
        for name in SERVERS:
            harness.wait_for(lambda: harness.server_state(cls.haproxy, "be_ws", name) == "UP",
                             what=f"HAProxy to see {name} UP")

        cls.moved_before = metric(cls.agent.metrics_port,
                                  'roomrelay_spoa_route_room_total{result="moved"}')
        started = time.monotonic()
        try:
            asyncio.run(cls.scenario())
        except BaseException as e:
            logs = "\n".join(f"{p.name}:\n{p.output()[-2500:]}"
                             for p in (*cls.backends.values(), cls.agent, cls.haproxy))
            raise AssertionError(f"{e!r}\n{logs}") from e
        cls.stick_table = harness.haproxy_cmd(cls.haproxy, "show table be_ws")
        dups = sum(metric(b.port, "roomrelay_messages_duplicate_total")
                   for name, b in cls.backends.items() if name != cls.owner)
        cls.moved_after = metric(cls.agent.metrics_port,
                                 'roomrelay_spoa_route_room_total{result="moved"}')
        print(f"# scenario done in {time.monotonic() - started:.2f} s: {cls.n} messages, "
              f"{sum(sum(c.sent.values()) - len(c.sent) for c in cls.clients)} resends "
              f"({dups:.0f} answered as duplicates), "
              f"refusals {sorted(r for c in cls.clients for r in map(str, c.refusals))}",
              flush=True)

    @classmethod
    async def scenario(cls):
        url = f"ws://127.0.0.1:{cls.haproxy.port}/ws"
        cls.subs = [f"member-{i:02d}" for i in range(MEMBERS)]
        cls.clients = [RC.RelayClient(url, ROOM, K.hs256(cls.keys, sub=s, ttl=3600))
                       for s in cls.subs]
        for c in cls.clients:
            c.start()
        try:
            await cls.drive()
        finally:
            for c in cls.clients:
                await c.close()

    @classmethod
    async def drive(cls):
        clients = cls.clients
        await RC.until(lambda: all(c.welcomes for c in clients), "every member's welcome",
                       STEP_TIMEOUT)
        cls.first = [c.welcomes[0][0] for c in clients]
        owner = cls.owner = cls.first[0]

        stop = asyncio.Event()

        async def publisher(c, sub):
            n = 0
            while not stop.is_set():
                n += 1
                c.publish({"m": sub, "n": n}, prefix=sub)
                try:
                    await asyncio.wait_for(stop.wait(), random.uniform(*PUBLISH_GAP_S))
                except asyncio.TimeoutError:
                    pass

        pubs = [asyncio.create_task(publisher(c, s)) for c, s in zip(clients, cls.subs)]
        await RC.until(lambda: all(len(c.messages) >= BEFORE_DRAIN for c in clients),
                       f"every member to receive {BEFORE_DRAIN} messages", STEP_TIMEOUT)

        cls.backends[owner].kill(signal.SIGTERM)
        await RC.until(lambda: all(c.migrates and c.instance not in (None, owner)
                                   for c in clients),
                       "every member to get migrate and a welcome elsewhere", STEP_TIMEOUT)
        moved_at = max(c.last_seq for c in clients)
        await RC.until(lambda: all(c.last_seq >= moved_at + AFTER_MOVE for c in clients),
                       f"{AFTER_MOVE} more messages for every member after the move",
                       STEP_TIMEOUT)

        stop.set()
        await asyncio.gather(*pubs)
        await RC.until(lambda: all(c.pending == 0 for c in clients), "every publish acked",
                       STEP_TIMEOUT)
        cls.n = max(s for c in clients for seqs in c.acks.values() for s in seqs)
        await RC.until(lambda: all(c.last_seq == cls.n for c in clients),
                       f"every member to receive up to seq {cls.n}", STEP_TIMEOUT)
        cls.owner_exit = await asyncio.to_thread(cls.backends[owner].wait_exit, STEP_TIMEOUT)

    # ---- the drained backend ----

    def test_members_all_landed_on_one_backend_which_exits_0_after_the_drain(self):
        self.assertEqual(set(self.first), {self.owner})
        self.assertIn(self.owner, SERVERS)
        self.assertEqual(self.owner_exit, 0, self.backends[self.owner].output()[-3000:])
        self.assertNotIn(self.owner, registry(self.redis.port))

    def test_every_member_got_migrate_and_a_1012_close_from_the_drained_backend(self):
        for sub, c in zip(self.subs, self.clients):
            self.assertEqual(len(c.migrates), 1, sub)
            self.assertTrue(100 <= c.migrates[0] < 1000, (sub, c.migrates))
            self.assertEqual(c.closes[0], 1012, (sub, c.closes))

    def test_every_member_moved_to_the_same_new_backend_through_haproxy(self):
        final = {c.instance for c in self.clients}
        self.assertEqual(len(final), 1, final)
        new = final.pop()
        self.assertIn(new, SERVERS)
        self.assertNotEqual(new, self.owner)
        for sub, c in zip(self.subs, self.clients):
            # Once migrated, never welcomed by the drained backend again.
            self.assertEqual([w[0] for w in c.welcomes[1:]], [new] * (len(c.welcomes) - 1), sub)
            # Every attempt after the first resumed from the member's last seq.
            self.assertTrue(all("since=" in u for u in c.urls[1:]), (sub, c.urls))
        self.assertEqual(harness.redis_cmd(self.redis.port, "GET", f"rr:{{{ROOM}}}:owner"), new)
        # HAProxy's fallback (the stick table on the room) follows the move too.
        self.assertIn(f"key={ROOM} ", self.stick_table)
        entry = next(l for l in self.stick_table.splitlines() if f"key={ROOM} " in l)
        self.assertIn(f"server_key={new}", entry)

    def test_the_agent_moved_the_room_once(self):
        self.assertEqual(self.moved_after - self.moved_before, 1)

    # ---- what the members hold ----

    def test_every_member_holds_seqs_1_to_n_without_a_gap_or_a_repeat(self):
        published = sum(len(c.published) for c in self.clients)
        self.assertEqual(self.n, published)
        for sub, c in zip(self.subs, self.clients):
            self.assertEqual([m[0] for m in c.messages], list(range(1, self.n + 1)), sub)

    def test_every_member_holds_identical_messages(self):
        first = self.clients[0].messages
        for sub, c in zip(self.subs[1:], self.clients[1:]):
            self.assertEqual(c.messages, first, sub)

    def test_every_publish_was_acked_once_with_the_seq_of_its_only_message(self):
        by_seq = {seq: (frm, data) for seq, frm, data in self.clients[0].messages}
        seen = set()
        for sub, c in zip(self.subs, self.clients):
            self.assertEqual(sorted(c.acks), sorted(c.published), sub)
            for pid, data in c.published.items():
                self.assertEqual(len(c.acks[pid]), 1, (sub, pid, c.acks[pid]))
                seq = c.acks[pid][0]
                self.assertEqual(by_seq[seq], (sub, data), (sub, pid))
                seen.add((sub, data["n"]))
        # N messages, N distinct publishes: no resend was numbered twice.
        self.assertEqual(len(seen), self.n)
        self.assertEqual(len({(frm, data["n"]) for frm, data in by_seq.values()}), self.n)

    def test_resumes_after_the_move_were_complete(self):
        for sub, c in zip(self.subs, self.clients):
            self.assertTrue(all(j.get("complete", True) for j in c.joined), (sub, c.joined))
        self.assertEqual([e for c in self.clients for e in c.errors
                          if e.get("code") != "unavailable"], [])


if __name__ == "__main__":
    tap.main()
