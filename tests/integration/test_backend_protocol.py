"""The client protocol of roomrelay-backend (DESIGN.md §4), spoken by
python3-websockets: welcome, publish/message/ack and their order, de-duplication,
join/leave/presence, member events, every error code with its count in
roomrelay_rejected_total, ping/pong.

Clients authenticate with HS256 tokens made by python3-jwt (keys.py), each
with its own `sub`, so `from`, presence and member events name real users.
"""
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import keys as K  # noqa: E402
import tap  # noqa: E402

INSTANCE = "proto-ws7"


class BackendCase(B.BackendTestCase):
    """One backend per class, started with `args` (plus an HMAC key)."""

    instance = INSTANCE

    @classmethod
    def setUpClass(cls):
        cls.keys = K.KeySet(harness.tmpdir())
        super().setUpClass()

    @classmethod
    def backend_args(cls):
        return ["--hmac-secret-file", cls.keys.hmac_file] + list(cls.args)


    async def member(self, room, sub, **claims):
        tok = K.hs256(self.keys, sub=sub, **claims)
        return await B.connect(self.port, room, query=f"access_token={tok}")

    async def members(self, room, *subs):
        """Connects one member of room per sub, in order; each reads the join
        event of every member after it. Returns their sockets."""
        clients = [(await self.member(room, sub))[0] for sub in subs]
        for i, ws in enumerate(clients):
            for later in subs[i + 1:]:
                self.assertEqual(await B.recv_json(ws),
                                 {"type": "member", "room": room, "sub": later, "event": "join"})
        return clients

    async def assert_error(self, ws, msg, code, reason, id=None):
        """Sends msg (a dict, or a str sent verbatim); expects error `code`
        (with `id` when given) and roomrelay_rejected_total{reason} one higher."""
        before = B.rejected(self.port, reason) if reason else None
        await ws.send(msg if isinstance(msg, str) else B.json.dumps(msg))
        err = await B.recv_json(ws)
        self.assertEqual(err["type"], "error")
        self.assertEqual(err["code"], code)
        self.assertIsInstance(err["message"], str)
        self.assertTrue(err["message"])
        expected_keys = {"type", "code", "message"} | ({"id"} if id is not None else set())
        self.assertEqual(set(err), expected_keys)
        if id is not None:
            self.assertEqual(err["id"], id)
        if reason:
            self.assertEqual(B.rejected(self.port, reason), before + 1)
        return err


class Protocol(BackendCase):
    args = ["--publish-rate", "0", "--max-rooms-per-conn", "4"]

    def test_welcome_names_instance_session_room_and_seq_0(self):
        async def body():
            ws, welcome = await self.member("welcome-room", "alice")
            ws2, welcome2 = await self.member("welcome-room", "bob")
            self.assertEqual(set(welcome), {"type", "instance", "session", "room", "seq"})
            self.assertEqual(welcome["instance"], INSTANCE)
            self.assertEqual(welcome["room"], "welcome-room")
            self.assertEqual(welcome["seq"], 0)
            self.assertRegex(welcome["session"], r"^[0-9a-f]{16}$")
            self.assertRegex(welcome2["session"], r"^[0-9a-f]{16}$")
            self.assertNotEqual(welcome["session"], welcome2["session"])
            await ws.close()
            await ws2.close()
        B.run(body())

    def test_welcome_seq_is_the_rooms_last_seq(self):
        async def body():
            room = self.room()
            ws, _ = await self.member(room, "alice")
            for i in range(3):
                await B.publish_acked(ws, room, i, f"w{i}", i + 1)
            ws2, welcome = await self.member(room, "bob")
            self.assertEqual(welcome["seq"], 3)
            await ws.close()
            await ws2.close()
        B.run(body())

    def test_publish_reaches_every_member_then_acks_the_publisher(self):
        async def body():
            room = self.room()
            alice, bob = await self.members(room, "alice", "bob")
            data = {"move": "e4", "n": [1, 2.5, None, True], "s": "héllo ✓"}
            t0 = int(time.time() * 1000)
            await B.send_json(alice, type="publish", room=room, data=data, id="m-1")
            got_a = await B.recv_json(alice)
            ack = await B.recv_json(alice)
            got_b = await B.recv_json(bob)
            t1 = int(time.time() * 1000)
            for msg in (got_a, got_b):
                self.assertEqual(set(msg), {"type", "room", "seq", "from", "data", "ts"})
                self.assertEqual(msg["type"], "message")
                self.assertEqual(msg["room"], room)
                self.assertEqual(msg["seq"], 1)
                self.assertEqual(msg["from"], "alice")
                self.assertEqual(msg["data"], data)
                self.assertTrue(t0 <= msg["ts"] <= t1, (t0, msg["ts"], t1))
            self.assertEqual(got_a, got_b)
            self.assertEqual(ack, {"type": "ack", "id": "m-1", "seq": 1})
            await B.assert_quiet(bob)  # no ack for the members who did not publish
            await alice.close()
            await bob.close()
        B.run(body())

    def test_seq_is_one_order_for_every_member_under_interleaved_publishers(self):
        n = 50

        async def body():
            room = self.room()
            subs = ("alice", "bob", "carol")
            clients = list(zip(subs, await self.members(room, *subs)))

            async def publish(sub, ws):
                for i in range(n):
                    await B.send_json(ws, type="publish", room=room, data=f"{sub}-{i}",
                                      id=f"{sub}-{i}")
                    await asyncio.sleep(0)  # let the other publisher's sends interleave

            async def collect(ws):
                msgs, acks = [], {}
                while len(msgs) < 2 * n or (ws is not clients[2][1] and len(acks) < n):
                    m = await B.recv_json(ws)
                    if m["type"] == "message":
                        msgs.append(m)
                    elif m["type"] == "ack":
                        acks[m["id"]] = m["seq"]
                    else:
                        raise AssertionError(f"unexpected {m}")
                return msgs, acks

            results = await asyncio.gather(
                publish(*clients[0]), publish(*clients[1]),
                *(collect(ws) for _, ws in clients))
            seen = results[2:]
            ref = [(m["seq"], m["from"], m["data"]) for m in seen[0][0]]
            self.assertEqual([s for s, _, _ in ref], list(range(1, 2 * n + 1)))
            for msgs, _ in seen[1:]:
                self.assertEqual([(m["seq"], m["from"], m["data"]) for m in msgs], ref)
            # Each publisher's own messages arrive in the order it sent them.
            for sub in ("alice", "bob"):
                self.assertEqual([d for _, f, d in ref if f == sub],
                                 [f"{sub}-{i}" for i in range(n)])
            # Every ack names the seq its message got.
            seq_of = {d: s for s, _, d in ref}
            for k, (sub, _) in enumerate(clients[:2]):
                acks = seen[k][1]
                self.assertEqual(acks, {f"{sub}-{i}": seq_of[f"{sub}-{i}"] for i in range(n)})
            self.assertEqual(seen[2][1], {})
            for _, ws in clients:
                await ws.close()
        B.run(body())

    def test_resent_id_is_acked_with_the_original_seq_and_not_published_again(self):
        async def body():
            room = self.room()
            alice, bob = await self.members(room, "alice", "bob")
            dup_before = B.metrics(self.port)["roomrelay_messages_duplicate_total"]
            await B.send_json(alice, type="publish", room=room, data="first", id="dup-1")
            await B.expect_json(alice, type="message", seq=1, data="first")
            self.assertEqual(await B.recv_json(alice), {"type": "ack", "id": "dup-1", "seq": 1})
            await B.expect_json(bob, type="message", seq=1, data="first")
            await B.send_json(alice, type="publish", room=room, data="other", id="dup-2")
            await B.expect_json(alice, type="message", seq=2, data="other")
            await B.expect_json(alice, type="ack", id="dup-2", seq=2)
            await B.expect_json(bob, type="message", seq=2, data="other")

            await B.send_json(alice, type="publish", room=room, data="first again", id="dup-1")
            self.assertEqual(await B.recv_json(alice), {"type": "ack", "id": "dup-1", "seq": 1})
            await B.assert_quiet(alice)
            await B.assert_quiet(bob)
            self.assertEqual(B.metrics(self.port)["roomrelay_messages_duplicate_total"],
                             dup_before + 1)
            # The same id from another sub is another message.
            await B.send_json(bob, type="publish", room=room, data="bob's", id="dup-1")
            await B.expect_json(bob, type="message", seq=3, **{"from": "bob"})
            self.assertEqual(await B.recv_json(bob), {"type": "ack", "id": "dup-1", "seq": 3})
            await B.expect_json(alice, type="message", seq=3, data="bob's")
            await alice.close()
            await bob.close()
        B.run(body())

    def test_join_another_room_answers_joined_and_delivers_its_messages(self):
        async def body():
            home, other = self.room() + "-home", self.room() + "-other"
            alice, _ = await self.member(home, "alice")
            bob, _ = await self.member(other, "bob")
            await B.publish_acked(bob, other, 1, "o1", 1)

            await B.send_json(alice, type="join", room=other)
            self.assertEqual(await B.recv_json(alice),
                             {"type": "joined", "room": other, "seq": 1, "complete": True})
            await B.expect_json(bob, type="member", room=other, sub="alice", event="join")
            await B.send_json(bob, type="publish", room=other, data=2, id="o2")
            m = await B.expect_json(alice, type="message", room=other, seq=2)
            self.assertEqual(m["data"], 2)
            # Joining a room one is in already answers joined again, no second membership.
            await B.send_json(alice, type="join", room=other)
            self.assertEqual(await B.recv_json(alice),
                             {"type": "joined", "room": other, "seq": 2, "complete": True})
            self.assertEqual(harness.http_get(self.port, "/rooms")[2].strip(),
                             B.json.dumps({home: 1, other: 2}, separators=(",", ":"),
                                          sort_keys=True))
            await alice.close()
            await bob.close()
        B.run(body())

    def test_join_with_since_says_whether_the_client_is_complete(self):
        async def body():
            room = self.room()
            alice, _ = await self.member(room, "alice")
            for i in range(3):
                await B.publish_acked(alice, room, i, f"s{i}", i + 1)
            bob, _ = await self.member(room + "-b", "bob")
            await B.send_json(bob, type="join", room=room, since=3)
            self.assertEqual(await B.recv_json(bob), {"type": "joined", "room": room, "seq": 3,
                                                      "recovered": 0, "complete": True})
            await B.send_json(bob, type="leave", room=room)
            await B.send_json(bob, type="join", room=room, since=1)
            self.assertEqual(await B.recv_json(bob), {"type": "joined", "room": room, "seq": 3,
                                                      "recovered": 0, "complete": False})
            await B.send_json(bob, type="join", room=room + "-fresh", since=0)
            self.assertEqual(await B.recv_json(bob), {"type": "joined", "room": room + "-fresh",
                                                      "seq": 0, "recovered": 0,
                                                      "complete": True})
            await alice.close()
            await bob.close()
        B.run(body())

    def test_leave_then_publish_is_not_member(self):
        async def body():
            room = self.room()
            alice, bob = await self.members(room, "alice", "bob")
            await B.send_json(bob, type="leave", room=room)
            await B.expect_json(alice, type="member", room=room, sub="bob", event="leave")
            await self.assert_error(bob, {"type": "publish", "room": room, "data": 1, "id": "x1"},
                                    "not_member", "not_member", id="x1")
            await self.assert_error(bob, {"type": "presence", "room": room},
                                    "not_member", "not_member")
            await self.assert_error(bob, {"type": "leave", "room": room},
                                    "not_member", "not_member")
            # A left member gets nothing more from the room.
            await B.publish_acked(alice, room, 1, "a1", 1)
            await B.assert_quiet(bob)
            await alice.close()
            await bob.close()
        B.run(body())

    def test_presence_lists_every_member_with_its_instance(self):
        async def body():
            room = self.room()
            subs = ["alice", "bob", "carol"]
            clients = await self.members(room, *subs)
            await B.send_json(clients[1], type="presence", room=room)
            p = await B.recv_json(clients[1])
            self.assertEqual(set(p), {"type", "room", "members"})
            self.assertEqual(p["type"], "presence")
            self.assertEqual(p["room"], room)
            self.assertEqual(sorted(p["members"], key=lambda m: m["sub"]),
                             [{"sub": s, "instance": INSTANCE} for s in subs])
            await clients[2].close()
            await B.expect_json(clients[0], type="member", sub="carol", event="leave")
            await B.send_json(clients[0], type="presence", room=room)
            p = await B.expect_json(clients[0], type="presence")
            self.assertEqual(sorted(m["sub"] for m in p["members"]), ["alice", "bob"])
            for c in clients[:2]:
                await c.close()
        B.run(body())

    def test_member_events_on_join_and_leave_in_a_small_room(self):
        async def body():
            room = self.room()
            alice, bob = await self.members(room, "alice", "bob")  # alice is told bob joined
            await B.assert_quiet(bob)  # the joiner is not told about itself
            carol, _ = await self.member(room + "-c", "carol")
            await B.send_json(carol, type="join", room=room)
            await B.expect_json(carol, type="joined", room=room)
            for ws in (alice, bob):
                self.assertEqual(await B.recv_json(ws),
                                 {"type": "member", "room": room, "sub": "carol",
                                  "event": "join"})
            await B.send_json(carol, type="leave", room=room)
            for ws in (alice, bob):
                self.assertEqual(await B.recv_json(ws),
                                 {"type": "member", "room": room, "sub": "carol",
                                  "event": "leave"})
            await bob.close()
            self.assertEqual(await B.recv_json(alice),
                             {"type": "member", "room": room, "sub": "bob", "event": "leave"})
            await B.assert_quiet(carol)
            await alice.close()
            await carol.close()
        B.run(body())

    def test_ping_is_answered_with_pong(self):
        async def body():
            ws, _ = await self.member(self.room(), "alice")
            await B.send_json(ws, type="ping")
            self.assertEqual(await B.recv_json(ws), {"type": "pong"})
            await ws.close()
        B.run(body())

    def test_error_bad_json(self):
        async def body():
            ws, _ = await self.member(self.room(), "alice")
            await self.assert_error(ws, "not json", "bad_json", "bad_message")
            await self.assert_error(ws, "[1, 2]", "bad_json", "bad_message")
            await self.assert_error(ws, '{"type":"ping","type":"ping"}', "bad_json",
                                    "bad_message")
            await B.send_json(ws, type="ping")
            await B.expect_json(ws, type="pong")  # an error does not end the session
            await ws.close()
        B.run(body())

    def test_error_bad_request(self):
        async def body():
            room = self.room()
            ws, _ = await self.member(room, "alice")
            await self.assert_error(ws, {"room": room}, "bad_request", "bad_message")
            await self.assert_error(ws, {"type": 7}, "bad_request", "bad_message")
            await self.assert_error(ws, {"type": "publish", "room": room, "data": 1},
                                    "bad_request", "bad_message")
            await self.assert_error(ws, {"type": "publish", "room": room, "data": 1, "id": 5},
                                    "bad_request", "bad_message")
            await self.assert_error(ws, {"type": "publish", "room": room, "id": "no-data"},
                                    "bad_request", "bad_message", id="no-data")
            await self.assert_error(ws, {"type": "publish", "room": room, "data": 1,
                                         "id": "x" * 129}, "bad_request", "bad_message")
            await self.assert_error(ws, {"type": "join", "room": room, "since": -1},
                                    "bad_request", "bad_message")
            await self.assert_error(ws, {"type": "join", "room": 42}, "bad_request",
                                    "bad_message")
            await ws.close()
        B.run(body())

    def test_error_unknown_type(self):
        async def body():
            ws, _ = await self.member(self.room(), "alice")
            await self.assert_error(ws, {"type": "subscribe", "room": "x"}, "unknown_type",
                                    "bad_message")
            await ws.close()
        B.run(body())

    def test_error_invalid_room(self):
        async def body():
            room = self.room()
            ws, _ = await self.member(room, "alice")
            await self.assert_error(ws, {"type": "join", "room": "a b"}, "invalid_room",
                                    "invalid_room")
            await self.assert_error(ws, {"type": "join", "room": ""}, "invalid_room",
                                    "invalid_room")
            await self.assert_error(ws, {"type": "join", "room": "r" * 65}, "invalid_room",
                                    "invalid_room")
            await self.assert_error(ws, {"type": "join"}, "invalid_room", "invalid_room")
            await self.assert_error(ws, {"type": "publish", "room": "a/b", "data": 1,
                                         "id": "ir"}, "invalid_room", "invalid_room", id="ir")
            # 64 bytes of every allowed character is a room.
            ok = ("AZaz09_.:-" * 7)[:64]
            await B.send_json(ws, type="join", room=ok)
            await B.expect_json(ws, type="joined", room=ok, seq=0)
            await ws.close()
        B.run(body())

    def test_error_forbidden_room_from_the_tokens_rooms_claim(self):
        async def body():
            room = self.room()
            ws, _ = await self.member(room, "alice", rooms=[room, "lobby:*"])
            await self.assert_error(ws, {"type": "join", "room": "elsewhere"}, "forbidden_room",
                                    "forbidden_room")
            await self.assert_error(ws, {"type": "join", "room": "lobby"}, "forbidden_room",
                                    "forbidden_room")
            await B.send_json(ws, type="join", room="lobby:7")
            await B.expect_json(ws, type="joined", room="lobby:7")
            await ws.close()
        B.run(body())

    def test_error_too_many_rooms(self):
        async def body():
            room = self.room()
            ws, _ = await self.member(room, "alice")  # --max-rooms-per-conn 4
            for i in range(3):
                await B.send_json(ws, type="join", room=f"{room}-{i}")
                await B.expect_json(ws, type="joined", room=f"{room}-{i}")
            await self.assert_error(ws, {"type": "join", "room": f"{room}-3"}, "too_many_rooms",
                                    "too_many_rooms")
            await B.send_json(ws, type="leave", room=f"{room}-0")
            await B.send_json(ws, type="join", room=f"{room}-3")
            await B.expect_json(ws, type="joined", room=f"{room}-3")
            await ws.close()
        B.run(body())


class SmallRoomsAndRates(BackendCase):
    """--presence-max-members 2, --max-rooms-per-conn 2, a low publish rate."""

    args = ["--presence-max-members", "2", "--max-rooms-per-conn", "2", "--publish-rate", "1",
            "--publish-burst", "2", "--rate-limit-strikes", "10"]

    def test_no_member_events_in_a_room_above_presence_max_members(self):
        async def body():
            room = self.room()
            alice, bob = await self.members(room, "alice", "bob")  # alice is told bob joined
            carol, _ = await self.member(room, "carol")  # 3 members > 2: no event
            await B.assert_quiet(alice)
            await B.assert_quiet(bob)
            await carol.close()  # leaving a room of 3: no event either
            harness.wait_for(lambda: B.json.loads(
                harness.http_get(self.port, "/rooms")[2]).get(room) == 2,
                what="carol gone from the room")
            await B.assert_quiet(alice)
            await B.assert_quiet(bob)
            await bob.close()  # a room of 2 again: events again
            self.assertEqual(await B.recv_json(alice),
                             {"type": "member", "room": room, "sub": "bob", "event": "leave"})
            await alice.close()
        B.run(body())

    def test_error_too_many_rooms_at_max_rooms_per_conn_2(self):
        async def body():
            room = self.room()
            ws, _ = await self.member(room, "alice")
            await B.send_json(ws, type="join", room=room + "-2")
            await B.expect_json(ws, type="joined", room=room + "-2")
            await self.assert_error(ws, {"type": "join", "room": room + "-3"}, "too_many_rooms",
                                    "too_many_rooms")
            await ws.close()
        B.run(body())

    def test_error_rate_limited_echoes_the_id_and_drops_the_message(self):
        async def body():
            room = self.room()
            ws, _ = await self.member(room, "alice")
            for i in range(2):  # the burst
                await B.publish_acked(ws, room, i, f"r{i}", i + 1)
            await self.assert_error(ws, {"type": "publish", "room": room, "data": 2, "id": "r2"},
                                    "rate_limited", "rate_limited", id="r2")
            await B.assert_quiet(ws)
            self.assertEqual(B.json.loads(harness.http_get(self.port, "/rooms")[2])[room], 1)
            await ws.close()
        B.run(body())


if __name__ == "__main__":
    tap.main()
