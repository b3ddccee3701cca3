"""The Redis bus (issue 4): two roomrelay-backends on one real Redis.

Members of one room on both backends receive one gap-free sequence, acks
carry the right seq, a publish id resent through the other backend is
published once, the publish script is called by SHA and loaded again after
SCRIPT FLUSH, and a member that reconnects with `since` gets exactly what it
missed, then live messages. With Redis down (killed) or hung (stopped), local
rooms keep talking and seqs go on when it is back.
"""
import asyncio
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402


def healthy(port):
    status, _, body = harness.http_get(port, "/health")
    return status == 200 and '"ok"' in body


def commandstats(redis_port):
    """INFO commandstats as {command: calls}."""
    out = {}
    for line in harness.redis_cmd(redis_port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[len("cmdstat_"):].partition(":")
            out[name] = int(rest.split(",")[0].split("=")[1])
    return out


class Cluster(unittest.TestCase):
    """One Redis and two backends on it, for the whole class."""

    redis_args = ()
    backend_args = []

    @classmethod
    def setUpClass(cls):
        cls.keys = K.KeySet(harness.tmpdir())
        cls.redis = harness.start_redis(args=cls.redis_args)
        args = ["--hmac-secret-file", cls.keys.hmac_file, "--publish-rate", "0",
                "--redis", f"127.0.0.1:{cls.redis.port}"] + cls.backend_args
        cls.ws1 = harness.start_backend(args, instance="ws1")
        cls.ws2 = harness.start_backend(args, instance="ws2")
        for b in (cls.ws1, cls.ws2):
            harness.wait_for(lambda: healthy(b.port), what=f"{b.name} /health ok")

    @classmethod
    def tearDownClass(cls):
        for b in (cls.ws1, cls.ws2):
            rc = b.stop()
            if rc != 0:
                raise AssertionError(f"{b.name} exited with {rc}:\n" + b.output()[-4000:])
        cls.redis.stop()

    def tearDown(self):
        for b in (self.ws1, self.ws2):
            if not b.alive():
                raise AssertionError(f"{b.name} died:\n" + b.output()[-4000:])

    def room(self):
        return self.id().rsplit(".", 1)[-1][5:].replace("_", "-")[:64]

    async def member(self, backend, room, sub, query=""):
        tok = K.hs256(self.keys, sub=sub)
        q = f"access_token={tok}" + (f"&{query}" if query else "")
        return await B.connect(backend.port, room, query=q)

    async def collect(self, ws, messages, acks=0):
        """Reads until `messages` messages and `acks` acks came; returns both
        lists in arrival order. Member events are skipped; anything else
        fails."""
        got, got_acks = [], []
        while len(got) < messages or len(got_acks) < acks:
            m = await B.recv_json(ws)
            if m["type"] == "message":
                got.append(m)
            elif m["type"] == "ack":
                got_acks.append(m)
            elif m["type"] != "member":
                raise AssertionError(f"unexpected {m}")
        return got, got_acks


class Bus(Cluster):
    def test_members_on_both_backends_get_one_gap_free_sequence(self):
        async def body():
            room = self.room()
            names = ["alice", "bob", "carol", "dave"]
            members = []
            for i, name in enumerate(names):
                ws, welcome = await self.member(self.ws1 if i % 2 == 0 else self.ws2, room, name)
                self.assertEqual(welcome["seq"], 0)
                members.append(ws)
            per = 15
            # Every member publishes at once, without waiting: interleaved
            # across both backends.
            for n in range(per):
                for ws, name in zip(members, names):
                    await B.send_json(ws, type="publish", room=room, data={"n": n, "by": name},
                                      id=f"{name}-{n}")
            results = await asyncio.gather(*(self.collect(ws, per * 4, per) for ws in members))
            first = results[0][0]
            self.assertEqual([m["seq"] for m in first], list(range(1, per * 4 + 1)))
            for msgs, acks in results:
                self.assertEqual(msgs, first)
            for (msgs, acks), name in zip(results, names):
                by_id = {f"{m['data']['by']}-{m['data']['n']}": m["seq"] for m in msgs}
                self.assertEqual(sorted(a["id"] for a in acks),
                                 sorted(f"{name}-{n}" for n in range(per)))
                for a in acks:
                    self.assertEqual(a["seq"], by_id[a["id"]], a)
                own = [m for m in msgs if m["from"] == name]
                self.assertEqual([m["data"]["n"] for m in own], list(range(per)))
            self.assertEqual(harness.redis_cmd(self.redis.port, "GET", f"rr:{{{room}}}:seq"),
                             str(per * 4))
            for ws in members:
                await ws.close()
        B.run(body())

    def test_an_id_resent_through_the_other_backend_is_published_once(self):
        async def body():
            room = self.room()
            a1, _ = await self.member(self.ws1, room, "alice")
            a2, _ = await self.member(self.ws2, room, "alice")
            bob, _ = await self.member(self.ws2, room, "bob")
            await B.send_json(a1, type="publish", room=room, data="first", id="x-1")
            msgs, acks = await self.collect(a1, 1, 1)
            self.assertEqual(acks, [{"type": "ack", "id": "x-1", "seq": 1}])
            self.assertEqual((await self.collect(bob, 1))[0][0]["data"], "first")
            self.assertEqual((await self.collect(a2, 1))[0][0]["seq"], 1)
            # The same sub resends x-1 through ws2: the original seq, no message.
            await B.send_json(a2, type="publish", room=room, data="again", id="x-1")
            self.assertEqual(await B.recv_json(a2), {"type": "ack", "id": "x-1", "seq": 1})
            # Another sub's x-1 is its own message.
            await B.send_json(bob, type="publish", room=room, data="bob's", id="x-1")
            msgs, acks = await self.collect(bob, 1, 1)
            self.assertEqual((msgs[0]["seq"], msgs[0]["data"], acks[0]["seq"]), (2, "bob's", 2))
            for ws in (a1, a2):
                m = await B.recv_json(ws)
                self.assertEqual((m["seq"], m["data"]), (2, "bob's"))
            await B.assert_quiet(a2)
            for ws in (a1, a2, bob):
                await ws.close()
        B.run(body())

    def test_publish_calls_the_script_by_sha_and_reloads_it_after_script_flush(self):
        async def body():
            room = self.room()
            alice, _ = await self.member(self.ws1, room, "alice")
            bob, _ = await self.member(self.ws2, room, "bob")
            before = commandstats(self.redis.port)
            for n in range(3):
                await B.send_json(alice, type="publish", room=room, data=n, id=f"s-{n}")
                await self.collect(alice, 1, 1)
            after = commandstats(self.redis.port)
            self.assertEqual(after["evalsha"] - before["evalsha"], 3)
            self.assertEqual(after.get("eval", 0), before.get("eval", 0))
            self.assertEqual(harness.redis_cmd(self.redis.port, "SCRIPT", "FLUSH"), "OK")
            await B.send_json(alice, type="publish", room=room, data="after flush", id="s-3")
            msgs, acks = await self.collect(alice, 1, 1)
            self.assertEqual((msgs[0]["seq"], acks[0]["seq"]), (4, 4))
            bob_msgs, _ = await self.collect(bob, 4)
            self.assertEqual([m["seq"] for m in bob_msgs], [1, 2, 3, 4])
            again = commandstats(self.redis.port)
            self.assertEqual(again["script|load"] - after["script|load"], 1)
            self.assertEqual(again.get("eval", 0), before.get("eval", 0))
            await alice.close()
            await bob.close()
        B.run(body())

    def test_the_history_holds_each_message_under_its_seq(self):
        async def body():
            room = self.room()
            alice, _ = await self.member(self.ws1, room, "alice")
            await B.send_json(alice, type="publish", room=room, data={"k": 1}, id="h-1")
            msgs, _ = await self.collect(alice, 1, 1)
            entries = harness.redis_cmd(self.redis.port, "XRANGE", f"rr:{{{room}}}:hist", "-",
                                        "+")
            self.assertEqual(len(entries), 1)
            self.assertEqual(entries[0][0], "1-0")
            self.assertEqual(entries[0][1][0], "m")
            self.assertEqual(B.json.loads(entries[0][1][1]), msgs[0])
            ttl = harness.redis_cmd(self.redis.port, "TTL", f"rr:{{{room}}}:seq")
            self.assertTrue(3500 < ttl <= 3600, ttl)
            self.assertEqual(harness.redis_cmd(self.redis.port, "ZSCORE", f"rr:{{{room}}}:ids",
                                               "alice\nh-1"), "1")
            await alice.close()
        B.run(body())


    def test_a_subscription_lingers_after_the_last_member_left(self):
        async def body():
            room = self.room()
            ch = f"rr:{{{room}}}:ch"

            def numsub():
                return harness.redis_cmd(self.redis.port, "PUBSUB", "NUMSUB", ch)[1]

            alice, _ = await self.member(self.ws1, room, "alice")
            self.assertEqual(numsub(), 1)
            unsubs = commandstats(self.redis.port).get("unsubscribe", 0)
            await alice.close()
            harness.wait_for(lambda: room not in harness.http_get(self.ws1.port, "/rooms")[2],
                             what="the room gone from ws1")
            # Back within --subscribe-linger-ms (2 s): the same subscription.
            alice, welcome = await self.member(self.ws1, room, "alice")
            self.assertEqual(numsub(), 1)
            self.assertEqual(commandstats(self.redis.port).get("unsubscribe", 0), unsubs)
            await B.send_json(alice, type="publish", room=room, data=1, id="l1")
            msgs, _ = await self.collect(alice, 1, 1)
            self.assertEqual(msgs[0]["seq"], 1)
            await alice.close()
            harness.wait_for(lambda: numsub() == 0, timeout=10, what="UNSUBSCRIBE after the linger")
        B.run(body())


class Resume(Cluster):
    async def publish(self, ws, room, n, tag):
        for i in range(n):
            await B.send_json(ws, type="publish", room=room, data=f"{tag}{i}", id=f"{tag}{i}")
        return await self.collect(ws, n, n)

    def test_reconnect_with_since_replays_exactly_the_missed_messages_then_live(self):
        async def body():
            room = self.room()
            alice, _ = await self.member(self.ws1, room, "alice")
            bob, _ = await self.member(self.ws2, room, "bob")
            await self.publish(alice, room, 3, "a")
            seen, _ = await self.collect(bob, 3)
            last = seen[-1]["seq"]
            await bob.close()
            await self.publish(alice, room, 20, "b")
            # Back through the other backend, as after a drain.
            bob, welcome = await self.member(self.ws1, room, "bob", query=f"since={last}")
            self.assertEqual(welcome["seq"], last + 20)
            self.assertEqual(await B.recv_json(bob), {"type": "joined", "room": room,
                                                      "seq": last + 20, "recovered": 20,
                                                      "complete": True})
            missed, _ = await self.collect(bob, 20)
            self.assertEqual([m["seq"] for m in missed], list(range(last + 1, last + 21)))
            self.assertEqual([m["data"] for m in missed], [f"b{i}" for i in range(20)])
            await B.send_json(alice, type="publish", room=room, data="live", id="live")
            live, _ = await self.collect(bob, 1)
            self.assertEqual((live[0]["seq"], live[0]["data"]), (last + 21, "live"))
            await B.assert_quiet(bob)
            await alice.close()
            await bob.close()
        B.run(body())

    def test_join_with_since_replays_while_others_keep_publishing(self):
        async def body():
            room = self.room()
            alice, _ = await self.member(self.ws1, room, "alice")
            await self.publish(alice, room, 10, "a")
            bob, _ = await self.member(self.ws2, room + "-home", "bob")

            async def keep_publishing():
                for i in range(30):
                    await B.send_json(alice, type="publish", room=room, data=f"c{i}", id=f"c{i}")
                    await asyncio.sleep(0.002)

            task = asyncio.ensure_future(keep_publishing())
            await B.send_json(bob, type="join", room=room, since=4)
            joined = await B.recv_json(bob)
            self.assertEqual(joined["type"], "joined")
            self.assertTrue(joined["complete"])
            self.assertEqual(joined["recovered"], joined["seq"] - 4)
            await task
            got, _ = await self.collect(bob, 40 - 4)
            self.assertEqual([m["seq"] for m in got], list(range(5, 41)))
            await B.assert_quiet(bob)
            await alice.close()
            await bob.close()
        B.run(body())

    def test_resume_from_the_last_seq_is_complete_with_nothing_to_replay(self):
        async def body():
            room = self.room()
            alice, _ = await self.member(self.ws1, room, "alice")
            await self.publish(alice, room, 2, "a")
            bob, welcome = await self.member(self.ws2, room, "bob", query="since=2")
            self.assertEqual(welcome["seq"], 2)
            self.assertEqual(await B.recv_json(bob), {"type": "joined", "room": room, "seq": 2,
                                                      "recovered": 0, "complete": True})
            await B.assert_quiet(bob)
            await alice.close()
            await bob.close()
        B.run(body())

    def test_since_in_the_url_must_be_a_number(self):
        for bad in ("x", "-1", "", "1e3", "99999999999999999999999"):
            c = B.raw_ws(self.ws1.port, "r", path=f"/ws?room=r&since={bad}")
            self.assertEqual(c.status, 400, bad)


class ShortHistory(Cluster):
    # Approximate trimming (MAXLEN ~) removes whole stream nodes: small
    # nodes let a history of 5 really be short.
    redis_args = ("--stream-node-max-entries", "2")
    backend_args = ["--history-size", "5"]

    def test_a_resume_past_the_history_says_complete_false_and_gives_what_is_left(self):
        async def body():
            room = self.room()
            alice, _ = await self.member(self.ws1, room, "alice")
            for i in range(21):
                await B.send_json(alice, type="publish", room=room, data=i, id=f"m{i}")
            await self.collect(alice, 21, 21)
            bob, welcome = await self.member(self.ws2, room, "bob", query="since=1")
            self.assertEqual(welcome["seq"], 21)
            joined = await B.recv_json(bob)
            self.assertEqual(joined["type"], "joined")
            self.assertFalse(joined["complete"])
            n = joined["recovered"]
            self.assertTrue(5 <= n < 20, joined)
            got, _ = await self.collect(bob, n)
            self.assertEqual([m["seq"] for m in got], list(range(22 - n, 22)))
            await B.assert_quiet(bob)
            await alice.close()
            await bob.close()
        B.run(body())


class RedisAway(Cluster):
    """What RedisDown and RedisHangs share: alice and carol on ws1, bob on
    ws2, in one room; no tests of its own."""

    def health(self, backend):
        status, _, body = harness.http_get(backend.port, "/health")
        return status, B.json.loads(body)["status"]

    async def three_members(self, room):
        """alice, carol (ws1) and bob (ws2), after a first message, seq 1."""
        alice, _ = await self.member(self.ws1, room, "alice")
        carol, _ = await self.member(self.ws1, room, "carol")
        bob, _ = await self.member(self.ws2, room, "bob")
        await B.send_json(alice, type="publish", room=room, data="up", id="u0")
        for ws in (alice, carol, bob):
            self.assertEqual((await self.collect(ws, 1, ws is alice))[0][0]["seq"], 1)
        return alice, carol, bob

    def wait_degraded(self):
        for b in (self.ws1, self.ws2):
            harness.wait_for(lambda: self.health(b) == (503, "degraded"),
                             what=f"{b.name} degraded")
            self.assertEqual(B.metrics(b.port)["roomrelay_degraded"], 1)

    def wait_healthy(self):
        for b in (self.ws1, self.ws2):
            harness.wait_for(lambda: healthy(b.port), what=f"{b.name} healthy again")
            self.assertEqual(B.metrics(b.port)["roomrelay_degraded"], 0)

    async def numbered_here(self, room, alice, carol, bob):
        """Redis away: ws1 numbers alice's publishes 2, 3, 4 itself, acks
        and all; carol gets them, bob on ws2 nothing."""
        for i in range(3):
            await B.send_json(alice, type="publish", room=room, data=f"d{i}", id=f"d{i}")
        msgs, acks = await self.collect(alice, 3, 3)
        self.assertEqual([m["seq"] for m in msgs], [2, 3, 4])
        self.assertEqual([a["seq"] for a in acks], [2, 3, 4])
        self.assertEqual((await self.collect(carol, 3))[0], msgs)
        await B.assert_quiet(bob)


class RedisDown(RedisAway):
    backend_args = ["--redis-backoff-max-ms", "300"]

    def test_local_rooms_keep_talking_while_redis_is_down_and_seqs_go_on_after(self):
        async def body():
            room = self.room()
            alice, carol, bob = await self.three_members(room)
            port = self.redis.port
            self.redis.stop(harness.signal.SIGKILL)
            self.wait_degraded()
            await self.numbered_here(room, alice, carol, bob)

            type(self).redis = harness.start_redis(port=port)
            self.wait_healthy()
            # Redis came back empty: its seq caught up with ws1's, never lower.
            await B.send_json(alice, type="publish", room=room, data="back", id="b0")
            msgs, acks = await self.collect(alice, 1, 1)
            self.assertEqual((msgs[0]["seq"], acks[0]["seq"]), (5, 5))
            for ws in (carol, bob):
                self.assertEqual((await self.collect(ws, 1))[0], msgs)
            await B.send_json(bob, type="publish", room=room, data="from ws2", id="b1")
            for ws in (alice, carol, bob):
                m = (await self.collect(ws, 1))[0][0]
                self.assertEqual((m["seq"], m["data"]), (6, "from ws2"))
            self.assertEqual(harness.redis_cmd(port, "GET", f"rr:{{{room}}}:seq"), "6")
            # The locally numbered messages are not in the history.
            dave, _ = await self.member(self.ws2, room, "dave", query="since=1")
            joined = await B.recv_json(dave)
            self.assertEqual((joined["seq"], joined["complete"]), (6, False))
            for ws in (alice, carol, bob, dave):
                await ws.close()
        B.run(body())


class RedisHangs(RedisAway):
    """Redis stopped (SIGSTOP) with its connections open: hiredis would wait
    forever; --redis-timeout drops the links as if Redis had closed them."""

    backend_args = ["--redis-timeout", "1000", "--redis-backoff-max-ms", "300"]

    def test_a_stopped_redis_is_noticed_the_publish_in_flight_fails_and_seqs_go_on_after(self):
        async def body():
            room = self.room()
            alice, carol, bob = await self.three_members(room)
            self.redis.kill(harness.signal.SIGSTOP)
            self.addCleanup(self.redis.kill, harness.signal.SIGCONT)
            # Its script call waits for an answer that never comes, until the
            # command link is dropped: the answer a lost Redis gives.
            await B.send_json(alice, type="publish", room=room, data="lost", id="h0")
            err = await B.recv_json(alice)
            self.assertEqual((err["type"], err["code"], err["id"]), ("error", "unavailable", "h0"))
            # ws2 has idle links only: its PINGs go unanswered.
            self.wait_degraded()
            for b in (self.ws1, self.ws2):
                self.assertGreaterEqual(B.metrics(b.port)["roomrelay_redis_timeouts_total"], 1)
            self.assertIn("no answer from", self.ws1.output())
            await self.numbered_here(room, alice, carol, bob)

            self.redis.kill(harness.signal.SIGCONT)
            self.wait_healthy()
            # One sequence again, above what ws1 numbered alone, on both sides
            # (the lost publish may have run when Redis woke up: the client
            # would resend it with its id, and get its seq).
            await B.send_json(alice, type="publish", room=room, data="back", id="b0")
            msgs, acks = await self.collect(alice, 1, 1)
            seq = msgs[0]["seq"]
            self.assertGreater(seq, 4)
            self.assertEqual(acks[0]["seq"], seq)
            for ws in (carol, bob):
                self.assertEqual((await self.collect(ws, 1))[0], msgs)
            await B.send_json(bob, type="publish", room=room, data="from ws2", id="b1")
            for ws in (alice, carol, bob):
                m = (await self.collect(ws, 1))[0][0]
                self.assertEqual((m["seq"], m["data"]), (seq + 1, "from ws2"))
            self.assertEqual(harness.redis_cmd(self.redis.port, "GET", f"rr:{{{room}}}:seq"),
                             str(seq + 1))
            for ws in (alice, carol, bob):
                await ws.close()
        B.run(body())


if __name__ == "__main__":
    tap.main()
