"""The registry and presence (issue 4): backends on one real Redis.

Each backend heartbeats its record (roomrelayctl status lists it up with its
connections); a SIGKILLed backend shows as gone once its TTL passed, a clean
stop removes it. Presence is cluster-wide: members of one room on two
backends see each other in `presence` and get each other's join/leave
events, and a crashed backend leaves no ghost member.
"""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402

CTL = harness.binary("roomrelayctl")
HEARTBEAT = ["--heartbeat-interval", "1"]


def healthy(port):
    status, _, body = harness.http_get(port, "/health")
    return status == 200 and '"ok"' in body


class Cluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = K.KeySet(harness.tmpdir())
        cls.redis = harness.start_redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def backend(self, instance, extra=()):
        args = ["--hmac-secret-file", self.keys.hmac_file, "--redis",
                f"127.0.0.1:{self.redis.port}"] + HEARTBEAT + list(extra)
        b = harness.start_backend(args, instance=instance)
        harness.wait_for(lambda: healthy(b.port), what=f"{instance} /health ok")
        return b

    def status(self):
        r = subprocess.run([CTL, "--redis", f"127.0.0.1:{self.redis.port}", "--json", "status"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {e["instance"]: e for e in json.loads(r.stdout)}

    async def member(self, backend, room, sub):
        tok = K.hs256(self.keys, sub=sub)
        return await B.connect(backend.port, room, query=f"access_token={tok}")


class Registry(Cluster):
    def test_heartbeats_list_backends_then_ttl_marks_a_killed_one_gone_and_a_stop_removes(self):
        adv = harness.free_port()
        ws1 = self.backend("reg1")
        ws2 = self.backend("reg2", ["--advertise", f"10.1.2.3:{adv}",
                                    "--haproxy-server-name", "be_ws/reg2"])
        try:
            async def body():
                a, _ = await self.member(ws1, "reg-room", "alice")
                b, _ = await self.member(ws1, "reg-room-2", "bob")
                c, _ = await self.member(ws2, "reg-room", "carol")
                harness.wait_for(lambda: (self.status().get("reg1", {}).get("conns"),
                                          self.status().get("reg2", {}).get("conns")) == (2, 1),
                                 what="both backends listed with their connections")
                st = self.status()
                self.assertEqual({k: st["reg1"][k] for k in
                                  ("server", "state", "addr", "port", "rooms", "degraded")},
                                 {"server": "reg1", "state": "up", "addr": "127.0.0.1",
                                  "port": ws1.port, "rooms": 2, "degraded": False})
                self.assertEqual({k: st["reg2"][k] for k in ("server", "state", "addr", "port")},
                                 {"server": "be_ws/reg2", "state": "up", "addr": "10.1.2.3",
                                  "port": adv})
                ttl = harness.redis_cmd(self.redis.port, "PTTL", "rr:inst:reg1")
                self.assertTrue(0 < ttl <= 3000, ttl)
                fields = harness.redis_cmd(self.redis.port, "HGETALL", "rr:inst:reg1")
                rec = dict(zip(fields[::2], fields[1::2]))
                self.assertEqual(sorted(rec), sorted(["addr", "port", "server", "state", "conns",
                                                      "rooms", "started", "version",
                                                      "degraded"]))
                for ws in (a, b, c):
                    await ws.close()
            B.run(body())
            ws2.kill(signal.SIGKILL)
            ws2.p.wait()
            harness.wait_for(lambda: self.status()["reg2"]["state"] == "gone", timeout=15,
                             what="the killed backend shown gone once its TTL passed")
            self.assertEqual(self.status()["reg1"]["state"], "up")
            self.assertEqual(ws1.stop(), 0)
            self.assertNotIn("reg1", self.status())
            self.assertEqual(harness.redis_cmd(self.redis.port, "EXISTS", "rr:inst:reg1"), 0)
        finally:
            ws1.stop(signal.SIGKILL)
            ws2.stop(signal.SIGKILL)

    def test_a_backend_refuses_an_instance_id_with_spaces(self):
        r = subprocess.run([harness.binary("roomrelay-backend"), "--allow-anonymous",
                            "--instance-id", "a b"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--instance-id", r.stderr)


class Presence(Cluster):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ws1 = cls.backend(cls, "pr1")
        cls.ws2 = cls.backend(cls, "pr2")

    @classmethod
    def tearDownClass(cls):
        for b in (cls.ws1, cls.ws2):
            rc = b.stop()
            if rc != 0:
                raise AssertionError(f"{b.name} exited with {rc}:\n" + b.output()[-4000:])
        super().tearDownClass()

    async def presence(self, ws, room):
        await B.send_json(ws, type="presence", room=room)
        m = await B.expect_json(ws, type="presence", room=room)
        return sorted((e["sub"], e["instance"]) for e in m["members"])

    def test_members_on_two_backends_see_each_other_and_their_joins_and_leaves(self):
        async def body():
            room = "presence-two"
            alice, _ = await self.member(self.ws1, room, "alice")
            bob, _ = await self.member(self.ws2, room, "bob")
            await B.expect_json(alice, type="member", room=room, sub="bob", event="join")
            both = [("alice", "pr1"), ("bob", "pr2")]
            self.assertEqual(await self.presence(alice, room), both)
            self.assertEqual(await self.presence(bob, room), both)
            carol, _ = await self.member(self.ws1, room, "carol")
            for ws in (alice, bob):
                await B.expect_json(ws, type="member", room=room, sub="carol", event="join")
            await B.send_json(bob, type="leave", room=room)
            for ws in (alice, carol):
                await B.expect_json(ws, type="member", room=room, sub="bob", event="leave")
            self.assertEqual(await self.presence(alice, room),
                             [("alice", "pr1"), ("carol", "pr1")])
            await carol.close()
            await B.expect_json(alice, type="member", room=room, sub="carol", event="leave")
            members = harness.redis_cmd(self.redis.port, "HGETALL", f"rr:{{{room}}}:members")
            self.assertEqual(members, ["alice", "pr1"])
            ttl = harness.redis_cmd(self.redis.port, "PTTL", f"rr:{{{room}}}:members")
            self.assertTrue(0 < ttl <= 3000, ttl)
            await B.assert_quiet(alice)
            await alice.close()
            await bob.close()
        B.run(body())

    def test_a_sub_still_connected_here_stays_present_when_one_connection_leaves(self):
        async def body():
            room = "presence-twice"
            a1, _ = await self.member(self.ws1, room, "alice")
            a2, _ = await self.member(self.ws1, room, "alice")
            await B.expect_json(a1, type="member", sub="alice", event="join")
            await a2.close()
            await B.expect_json(a1, type="member", sub="alice", event="leave")
            self.assertEqual(await self.presence(a1, room), [("alice", "pr1")])
            await a1.close()
        B.run(body())

    def test_a_crashed_backend_leaves_no_ghost_member(self):
        ws3 = self.backend("pr3")
        try:
            async def body():
                room = "presence-crash"
                alice, _ = await self.member(self.ws1, room, "alice")
                dave, _ = await self.member(ws3, room, "dave")
                await B.expect_json(alice, type="member", sub="dave", event="join")
                self.assertEqual(await self.presence(alice, room),
                                 [("alice", "pr1"), ("dave", "pr3")])
                ws3.kill(signal.SIGKILL)
                ws3.p.wait()
                for _ in range(100):
                    if await self.presence(alice, room) == [("alice", "pr1")]:
                        break
                    await B.asyncio.sleep(0.1)
                self.assertEqual(await self.presence(alice, room), [("alice", "pr1")])
                await alice.close()
            B.run(body())
        finally:
            ws3.stop(signal.SIGKILL)


if __name__ == "__main__":
    tap.main()
