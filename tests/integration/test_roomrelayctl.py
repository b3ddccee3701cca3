"""roomrelayctl against a real Redis holding a registry as DESIGN.md §5 lays
it out. The registry here is written by the test itself (the backends'
heartbeats write the same keys); drain/undrain are checked by subscribing to
the control channel like a backend does."""
import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import tap  # noqa: E402

CTL = harness.binary("roomrelayctl")


class Ctl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = harness.start_redis()
        r = lambda *a: harness.redis_cmd(cls.redis.port, *a)  # noqa: E731
        now = int(time.time() * 1000)
        for inst, state, conns, rooms in [("ws1", "up", 12, 3), ("ws2", "draining", 4, 1)]:
            r("HSET", f"rr:inst:{inst}", "addr", "127.0.0.1", "port", "8081", "server", inst,
              "state", state, "conns", conns, "rooms", rooms, "started", 1795000000,
              "version", "0.1.0", "degraded", 0)
            r("ZADD", "rr:instances", now, inst)
        r("ZADD", "rr:instances", now - 60000, "ws9")  # heartbeat stopped, hash expired
        for room, owner, members in [("T42", "ws1", ["a", "b"]), ("lobby:1", "ws2", ["c"])]:
            r("SET", f"rr:{{{room}}}:owner", owner)
            for m in members:
                r("HSET", f"rr:{{{room}}}:members", m, owner)

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def ctl(self, *args):
        return subprocess.run([CTL, "--redis", f"127.0.0.1:{self.redis.port}", *args],
                              capture_output=True, text=True, timeout=10)

    def test_status_table_lists_every_instance_with_its_state(self):
        r = self.ctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
        self.assertEqual(rows["ws1"][2:5], ["up", "12", "3"])
        self.assertEqual(rows["ws2"][2], "draining")
        self.assertEqual(rows["ws9"][2], "gone")

    def test_status_json(self):
        r = self.ctl("status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        by_id = {e["instance"]: e for e in json.loads(r.stdout)}
        self.assertEqual(by_id["ws1"]["conns"], 12)
        self.assertEqual(by_id["ws1"]["server"], "ws1")
        self.assertFalse(by_id["ws1"]["degraded"])
        self.assertEqual(by_id["ws2"]["state"], "draining")
        self.assertEqual(by_id["ws9"]["state"], "gone")

    def test_rooms_lists_owner_and_member_count(self):
        r = self.ctl("rooms", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"T42": {"owner": "ws1", "members": 2},
                                                "lobby:1": {"owner": "ws2", "members": 1}})
        t = self.ctl("rooms")
        self.assertIn("T42", t.stdout)
        self.assertIn("lobby:1", t.stdout)

    def subscriber(self):
        s = socket.create_connection(("127.0.0.1", self.redis.port), timeout=5)
        s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\nrr:ctl\r\n")
        f = s.makefile("rb")
        self.assertEqual(harness._resp(f)[0], "subscribe")
        return s, f

    def test_drain_publishes_the_control_message(self):
        s, f = self.subscriber()
        try:
            r = self.ctl("drain", "ws1")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("sent to 1 listener", r.stdout)
            kind, channel, payload = harness._resp(f)
            self.assertEqual((kind, channel), ("message", "rr:ctl"))
            self.assertEqual(json.loads(payload), {"op": "drain", "instance": "ws1"})
            r = self.ctl("undrain", "ws1", "--json")
            self.assertEqual(json.loads(r.stdout)["op"], "undrain")
            self.assertEqual(json.loads(harness._resp(f)[2]),
                             {"op": "undrain", "instance": "ws1"})
        finally:
            s.close()

    def test_drain_of_an_unknown_instance_exits_3_and_says_so(self):
        r = self.ctl("drain", "nope")
        self.assertEqual(r.returncode, 3)
        self.assertIn("no live instance", r.stdout)

    def test_bad_usage_exits_2(self):
        for args in [(), ("status", "x"), ("drain",), ("frobnicate",)]:
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_unreachable_redis_exits_1(self):
        r = subprocess.run([CTL, "--redis", f"127.0.0.1:{harness.free_port()}", "status"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot reach Redis", r.stderr)


if __name__ == "__main__":
    tap.main()
