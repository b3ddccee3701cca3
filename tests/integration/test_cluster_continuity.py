"""Continuity of a busy room through the whole stack when its backend goes
away: drained (SIGTERM) or crashed (SIGKILL) (DESIGN.md §2, §6).

Redis; roomrelay-spoa with --redis; three roomrelay-backends ws1..ws3 on
that Redis (bus and registry heartbeats) trusting HAProxy (PROXY v2,
X-RR-Sub); HAProxy with the shipped haproxy/haproxy.cfg and
spoe-roomrelay.conf. Twenty members (relay_client.RelayClient, which
behaves like web/roomrelay.js) join one room through HAProxy and publish
continuously. Once messages flow, the backend that owns the room, O, goes:

- ContinuityThroughADrain: O gets SIGTERM. Its members get `migrate`,
  reconnect through HAProxy with since=<last seq>, the agent moves the room
  to another backend, and they resend what was not acked. O must exit 0.
- ContinuityThroughACrash: O gets SIGKILL. Its members' sockets just close;
  they reconnect with backoff and jitter (503 while the agent does not know
  O is dead yet), resume with since=<last seq> and resend what was not
  acked, under the same id. A newcomer joins while HAProxy has O DOWN and
  the agent still names it. All must end on the room's new owner, never
  elsewhere: HAProxy must not place them by itself in that window.

Either way the members go on publishing on the new backend, then stop and
wait for every ack. Every member must end with the same messages, numbered
1..N without a gap or a repeat, N being the number of publishes; every
publish acked once, with the seq its message carries (a resend of a
publish Redis already took is acked with the original seq); every member on
one live backend, the one rr:{room}:owner names, which HAProxy's stick
table names too.
"""
import asyncio
import collections
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
MEMBERS = 20
# Each member publishes once every 30-50 ms.
PUBLISH_GAP_S = (0.03, 0.05)
# Messages every member receives before O goes, and after the last member
# has moved.
BEFORE = 100
AFTER_MOVE = 200
STEP_TIMEOUT = 90


def registry(redis_port):
    """{instance: state} of the live registry records."""
    out = {}
    for inst in harness.redis_cmd(redis_port, "ZRANGE", "rr:instances", 0, -1) or []:
        state = harness.redis_cmd(redis_port, "HGET", f"rr:inst:{inst}", "state")
        if state is not None:
            out[inst] = state
    return out


class _RoomLosesItsBackend:
    """The stack, the members and the checks both cases share. A case names
    its ROOM, the agent's registry refresh, and what happens to O
    (lose_owner)."""

    ROOM = None
    REGISTRY_REFRESH_MS = None  # None: the agent's default

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
        refresh = ([] if cls.REGISTRY_REFRESH_MS is None
                   else ["--registry-refresh", str(cls.REGISTRY_REFRESH_MS)])
        cls.agent = harness.start_agent(
            cls.keys.agent_args() + ["--redis", redis, "--log-level", "info"] + refresh,
            metrics_port=harness.free_port())
        cls.addClassCleanup(cls.agent.stop)
        harness.wait_for(lambda: harness.metric(cls.agent.metrics_port,
                                                "roomrelay_spoa_redis_ready") == 2,
                         what="both agent workers to hold Redis and the registry")
        cls.haproxy = harness.start_haproxy(cls.agent.port, extra_env=hap_env)
        cls.addClassCleanup(cls.haproxy.stop)
        harness.wait_for(lambda: harness.server_state(cls.haproxy, "be_spoa", "spoa1") == "UP",
                         what="HAProxy to see the agent UP")
        for name in SERVERS:
            harness.wait_for(lambda: harness.server_state(cls.haproxy, "be_ws", name) == "UP",
                             what=f"HAProxy to see {name} UP")

        cls.moved_before = harness.metric(cls.agent.metrics_port,
                                          'roomrelay_spoa_route_room_total{result="moved"}')
        started = time.monotonic()
        try:
            asyncio.run(cls.scenario())
        except BaseException as e:
            logs = "\n".join(f"{p.name}:\n{p.output()[-2500:]}"
                             for p in (*cls.backends.values(), cls.agent, cls.haproxy))
            raise AssertionError(f"{e!r}\n{logs}") from e
        cls.stick_table = harness.haproxy_cmd(cls.haproxy, "show table be_ws")
        dups = sum(harness.metric(b.port, "roomrelay_messages_duplicate_total")
                   for name, b in cls.backends.items() if name != cls.owner)
        cls.moved_after = harness.metric(cls.agent.metrics_port,
                                         'roomrelay_spoa_route_room_total{result="moved"}')
        refusals = collections.Counter(str(r) for c in cls.clients + cls.others
                                       for r in c.refusals)
        print(f"# scenario done in {time.monotonic() - started:.2f} s: {cls.n} messages, "
              f"{sum(sum(c.sent.values()) - len(c.sent) for c in cls.clients)} resends "
              f"({dups:.0f} answered as duplicates), "
              f"refusals {dict(refusals)}",
              flush=True)

    @classmethod
    async def scenario(cls):
        cls.subs = [f"member-{i:02d}" for i in range(MEMBERS)]
        cls.clients = [cls.client(s) for s in cls.subs]
        cls.others = []  # members that join later, and do not publish
        for c in cls.clients:
            c.start()
        try:
            await cls.drive()
        finally:
            for c in cls.clients + cls.others:
                await c.close()

    @classmethod
    def client(cls, sub):
        return RC.RelayClient(f"ws://127.0.0.1:{cls.haproxy.port}/ws", cls.ROOM,
                              K.hs256(cls.keys, sub=sub, ttl=3600))

    @classmethod
    def owner_in_redis(cls):
        return harness.redis_cmd(cls.redis.port, "GET", f"rr:{{{cls.ROOM}}}:owner")

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
        await RC.until(lambda: all(len(c.messages) >= BEFORE for c in clients),
                       f"every member to receive {BEFORE} messages", STEP_TIMEOUT)

        await cls.lose_owner(owner)
        moved_at = max(c.last_seq for c in clients)
        await RC.until(lambda: all(c.last_seq >= moved_at + AFTER_MOVE for c in clients),
                       f"{AFTER_MOVE} more messages for every member after the move",
                       STEP_TIMEOUT)

        stop.set()
        await asyncio.gather(*pubs)
        await RC.until(lambda: all(c.pending == 0 for c in clients), "every publish acked",
                       STEP_TIMEOUT)
        cls.n = max(s for c in clients for seqs in c.acks.values() for s in seqs)
        await RC.until(lambda: all(c.last_seq == cls.n for c in clients + cls.others),
                       f"every member to receive up to seq {cls.n}", STEP_TIMEOUT)
        cls.final_owner = cls.owner_in_redis()

    # ---- where the members are ----

    def test_members_all_landed_on_one_backend_first(self):
        self.assertEqual(set(self.first), {self.owner})
        self.assertIn(self.owner, SERVERS)

    def test_every_member_ends_on_the_rooms_new_owner_through_haproxy(self):
        final = {c.instance for c in self.clients}
        self.assertEqual(len(final), 1, final)
        new = final.pop()
        self.assertIn(new, SERVERS)
        self.assertNotEqual(new, self.owner)
        for sub, c in zip(self.subs, self.clients):
            # Every attempt after the first resumed from the member's last seq.
            self.assertTrue(all("since=" in u for u in c.urls[1:]), (sub, c.urls))
        self.assertEqual(self.final_owner, new)
        self.assertIn(new, registry(self.redis.port))
        # HAProxy's fallback (the stick table on the room) follows the move too.
        self.assertIn(f"key={self.ROOM} ", self.stick_table)
        entry = next(l for l in self.stick_table.splitlines() if f"key={self.ROOM} " in l)
        self.assertIn(f"server_key={new}", entry)

    def test_every_member_moved_straight_to_the_new_owner_never_elsewhere(self):
        new = self.final_owner
        for sub, c in zip(self.subs, self.clients):
            self.assertEqual([w[0] for w in c.welcomes[1:]], [new] * (len(c.welcomes) - 1), sub)

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


class ContinuityThroughADrain(_RoomLosesItsBackend, unittest.TestCase):
    ROOM = "continuity.drain-1"
    # A registry read every 60 s: within this test the agent learns of the
    # drain only from the drained backend's announcement on rr:ctl.
    REGISTRY_REFRESH_MS = 60000

    @classmethod
    async def lose_owner(cls, owner):
        cls.backends[owner].kill(signal.SIGTERM)
        await RC.until(lambda: all(c.migrates and c.instance not in (None, owner)
                                   for c in cls.clients),
                       "every member to get migrate and a welcome elsewhere", STEP_TIMEOUT)

    @classmethod
    async def drive(cls):
        await super().drive()
        cls.owner_exit = await asyncio.to_thread(cls.backends[cls.owner].wait_exit, STEP_TIMEOUT)

    def test_the_drained_backend_exits_0_and_leaves_the_registry(self):
        self.assertEqual(self.owner_exit, 0, self.backends[self.owner].output()[-3000:])
        self.assertNotIn(self.owner, registry(self.redis.port))

    def test_every_member_got_migrate_and_a_1012_close_from_the_drained_backend(self):
        for sub, c in zip(self.subs, self.clients):
            self.assertEqual(len(c.migrates), 1, sub)
            self.assertTrue(100 <= c.migrates[0] < 1000, (sub, c.migrates))
            self.assertEqual(c.closes[0], 1012, (sub, c.closes))


class ContinuityThroughACrash(_RoomLosesItsBackend, unittest.TestCase):
    ROOM = "continuity.crash-1"

    @classmethod
    async def lose_owner(cls, owner):
        welcomed = [len(c.welcomes) for c in cls.clients]
        cls.events = {}
        cls.most_backends = 1
        cls.backends[owner].kill(signal.SIGKILL)
        cls.killed_at = time.monotonic()
        watch = asyncio.create_task(cls.watch(owner))
        try:
            # Someone joins the room while HAProxy has O DOWN: before the agent
            # can know O is gone (its registry record outlives it by up to 3
            # heartbeats).
            await RC.until(lambda: "down" in cls.events, f"HAProxy to mark {owner} DOWN",
                           STEP_TIMEOUT)
            cls.newcomer = cls.client("newcomer")
            cls.others.append(cls.newcomer)
            cls.newcomer.start()
            await RC.until(lambda: all(len(c.welcomes) > w for c, w in zip(cls.clients, welcomed))
                           and cls.newcomer.welcomes,
                           "every member to be welcomed again, and the newcomer", STEP_TIMEOUT)
            await RC.until(cls.together, "every member on the room's new owner", STEP_TIMEOUT)
        except TimeoutError as e:
            on = collections.Counter(c.instance if c.connected else None
                                     for c in cls.clients + cls.others)
            raise TimeoutError(f"{e}: members on {dict(on)}, owner {cls.owner_in_redis()}, "
                               f"HAProxy saw {owner} DOWN after {cls.seen('down')}") from e
        finally:
            watch.cancel()
        print(f"# crash of {owner}: HAProxy saw it DOWN after {cls.seen('down')}, the room "
              f"moved after {cls.seen('moved')}, every member on {cls.owner_in_redis()} after "
              f"{time.monotonic() - cls.killed_at:.2f} s; members on up to {cls.most_backends} "
              f"live backends at once", flush=True)

    @classmethod
    def together(cls):
        """Every member connected to the backend rr:{room}:owner names."""
        owner = cls.owner_in_redis()
        return owner != cls.owner and all(c.connected and c.instance == owner
                                          for c in cls.clients + cls.others)

    @classmethod
    async def watch(cls, owner):
        """Notes when HAProxy marks O DOWN, when the room moves, and across
        how many backends the connected members are spread."""
        while True:
            now = time.monotonic() - cls.killed_at
            if "down" not in cls.events and \
                    harness.server_state(cls.haproxy, "be_ws", owner) == "DOWN":
                cls.events["down"] = now
            if "moved" not in cls.events and cls.owner_in_redis() != owner:
                cls.events["moved"] = now
            on = {c.instance for c in cls.clients + cls.others
                  if c.connected and c.instance != owner}
            cls.most_backends = max(cls.most_backends, len(on))
            await asyncio.sleep(0.02)

    @classmethod
    def seen(cls, what):
        t = cls.events.get(what)
        return "never" if t is None else f"{t:.2f} s"

    def test_no_member_is_on_the_killed_backend(self):
        self.assertFalse(self.backends[self.owner].alive())
        for sub, c in zip(self.subs, self.clients):
            self.assertNotEqual(c.instance, self.owner, sub)
        self.assertNotEqual(self.final_owner, self.owner)

    def test_the_newcomer_joined_on_the_new_owner_and_holds_the_rooms_messages_since(self):
        c = self.newcomer
        self.assertEqual({w[0] for w in c.welcomes}, {self.final_owner}, c.welcomes)
        since = c.welcomes[0][1]
        self.assertEqual(c.messages, self.clients[0].messages[since:])
        self.assertEqual(c.instance, self.final_owner)


if __name__ == "__main__":
    tap.main()
