"""roomrelay-backend's operations side: /health, /status, /rooms, /metrics,
404/405, keep-alive, the admin endpoints and the agent-check port, drain
(over HTTP and by SIGTERM) and its timeout, and bad command lines.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import backend_client as B  # noqa: E402
import harness  # noqa: E402
import tap  # noqa: E402

ADMIN_TOKEN = "s3cret-admin-token-0123456789"
# Every metric family the backend exposes, with its type (docs/backend.md).
FAMILIES = {
    "roomrelay_connections": "gauge",
    "roomrelay_connections_total": "counter",
    "roomrelay_tcp_connections_total": "counter",
    "roomrelay_rooms": "gauge",
    "roomrelay_degraded": "gauge",
    "roomrelay_draining": "gauge",
    "roomrelay_rejected_total": "counter",
    "roomrelay_closes_total": "counter",
    "roomrelay_messages_published_total": "counter",
    "roomrelay_messages_duplicate_total": "counter",
    "roomrelay_room_events_total": "counter",
    "roomrelay_deliveries_total": "counter",
    "roomrelay_redis_timeouts_total": "counter",
    "roomrelay_bytes_sent_total": "counter",
    "roomrelay_bytes_received_total": "counter",
    "roomrelay_flush_seconds": "histogram",
}


def version():
    out = subprocess.run([harness.binary("roomrelay-backend"), "--version"],
                         capture_output=True, text=True, timeout=10).stdout
    return out.split()[-1]


def agent_check(port):
    with socket.create_connection(("127.0.0.1", port), timeout=B.TIMEOUT) as s:
        return B.closed_by_server(s).decode()


def admin_file():
    path = os.path.join(harness.tmpdir(), "admin.token")
    with open(path, "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    return path


class BackendCase(unittest.TestCase):
    instance = "ops-ws3"

    @classmethod
    def setUpClass(cls):
        cls.agent_port = harness.free_port()
        cls.backend = harness.start_backend(cls.backend_args(), instance=cls.instance)
        cls.port = cls.backend.port

    @classmethod
    def backend_args(cls):
        return ["--allow-anonymous"]

    @classmethod
    def tearDownClass(cls):
        rc = cls.backend.stop()
        if rc != 0:
            raise AssertionError(f"backend exited with {rc}:\n" + cls.backend.output()[-4000:])

    def setUp(self):
        # Connections of the previous case are gone before this one counts.
        harness.wait_for(lambda: self.status()["connections"] == 0, what="no WebSocket open")

    def tearDown(self):
        if not self.backend.alive():
            raise AssertionError("backend died:\n" + self.backend.output()[-4000:])

    def status(self):
        st, h, body = harness.http_get(self.port, "/status")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/json")
        return B.json.loads(body)

    def ws(self, room, **kw):
        c = B.raw_ws(self.port, room, **kw)
        self.addCleanup(c.close)
        return c

    def admin(self, path, token=ADMIN_TOKEN):
        headers = [("Authorization", "Bearer " + token)] if token is not None else []
        return B.http_raw(self.port, "POST", path, headers)


class Endpoints(BackendCase):
    def test_health_is_200_ok(self):
        st, h, body = harness.http_get(self.port, "/health")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(B.json.loads(body), {"status": "ok"})

    def test_status_fields_and_connection_count(self):
        self.ws("st-a")
        self.ws("st-a")
        c = self.ws("st-b")
        s = self.status()
        self.assertEqual(set(s), {"instance", "state", "connections", "rooms", "uptime",
                                  "version", "degraded"})
        self.assertEqual(s["instance"], self.instance)
        self.assertEqual(s["state"], "up")
        self.assertEqual(s["connections"], 3)
        self.assertEqual(s["rooms"], 2)
        self.assertIsInstance(s["uptime"], int)
        self.assertGreaterEqual(s["uptime"], 0)
        self.assertEqual(s["version"], version())
        self.assertIs(s["degraded"], False)
        c.close()
        harness.wait_for(lambda: self.status()["connections"] == 2, what="one WebSocket gone")
        self.assertEqual(self.status()["rooms"], 1)

    def test_rooms_counts_members_per_room(self):
        self.ws("rooms-x")
        self.ws("rooms-x")
        self.ws("rooms-y")
        st, _, body = harness.http_get(self.port, "/rooms")
        self.assertEqual(st, 200)
        self.assertEqual(B.json.loads(body), {"rooms-x": 2, "rooms-y": 1})

    def test_metrics_connections_gauge_and_help_type_for_every_family(self):
        self.ws("met-a")
        self.ws("met-b")
        st, h, body = harness.http_get(self.port, "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/plain"))
        m = B.metrics(self.port)
        self.assertEqual(m["roomrelay_connections"], 2)
        self.assertEqual(m["roomrelay_rooms"], 2)
        self.assertEqual(m["roomrelay_draining"], 0)
        helps = dict(re.findall(r"^# HELP (\S+) (.+)$", body, re.M))
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M))
        self.assertEqual(types, FAMILIES)
        self.assertEqual(set(helps), set(FAMILIES))
        # Every sample belongs to one of these families (a histogram's too).
        for name in m:
            name = name.split("{")[0]
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertTrue(name in FAMILIES or FAMILIES.get(base) == "histogram", name)

    def test_unknown_path_is_404(self):
        for path in ("/nope", "/health/x", "/ws/other", "/"):
            st, _, _ = B.http_raw(self.port, "GET", path)
            self.assertEqual(st, 404, path)

    def test_wrong_method_is_405_with_allow(self):
        st, h, _ = B.http_raw(self.port, "POST", "/health")
        self.assertEqual((st, h["allow"]), (405, "GET, HEAD"))
        st, h, _ = B.http_raw(self.port, "GET", "/admin/drain")
        self.assertEqual((st, h["allow"]), (405, "POST"))
        st, h, _ = B.http_raw(self.port, "POST", "/metrics")
        self.assertEqual((st, h["allow"]), (405, "GET, HEAD"))

    def test_admin_without_token_file_is_403(self):
        for path in ("/admin/drain", "/admin/undrain"):
            st, _, _ = self.admin(path)
            self.assertEqual(st, 403)
        self.assertEqual(self.status()["state"], "up")

    def test_keep_alive_answers_requests_in_turn_and_pipelined(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=B.TIMEOUT) as s:
            req = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode()
            s.sendall(req)
            line, h, body, rest = B.read_response(s)
            self.assertEqual(line, "HTTP/1.1 200 OK")
            self.assertNotIn("connection", h)
            self.assertEqual(B.json.loads(body), {"status": "ok"})
            s.sendall(req.replace(b"/health", b"/rooms"))
            line, _, body, rest = B.read_response(s, rest)
            self.assertEqual(line, "HTTP/1.1 200 OK")
            self.assertEqual(B.json.loads(body), {})
            # Two at once, the second asking to close.
            s.sendall(req + req.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            line1, _, _, rest = B.read_response(s, rest)
            line2, h2, body2, rest = B.read_response(s, rest)
            self.assertEqual((line1, line2), ("HTTP/1.1 200 OK", "HTTP/1.1 200 OK"))
            self.assertEqual(h2["connection"], "close")
            self.assertEqual(rest + B.closed_by_server(s), b"")

    def test_head_health_has_headers_and_no_body(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=B.TIMEOUT) as s:
            s.sendall("HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            buf = B.closed_by_server(s)
        head, _, rest = buf.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"\r\nContent-Length: 16", head)
        # The next bytes are the second answer, not a body of the first.
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest)


class Admin(BackendCase):
    @classmethod
    def backend_args(cls):
        return ["--allow-anonymous", "--admin-token-file", admin_file(),
                "--agent-check-listen", f"127.0.0.1:{cls.agent_port}", "--drain-timeout", "60"]

    def test_admin_wrong_or_missing_token_is_401(self):
        for token in ("wrong-token-0123456789abcdef", ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1], None):
            st, h, _ = self.admin("/admin/drain", token)
            self.assertEqual(st, 401, token)
            self.assertEqual(h["www-authenticate"], "Bearer")
        st, _, _ = B.http_raw(self.port, "POST", "/admin/drain",
                              [("Authorization", "Basic " + ADMIN_TOKEN)])
        self.assertEqual(st, 401)
        self.assertEqual(self.status()["state"], "up")
        self.assertEqual(agent_check(self.agent_port), "up\n")

    def test_drain_then_undrain(self):
        room = "drain-room"
        old = self.ws(room)
        self.assertEqual(agent_check(self.agent_port), "up\n")

        st, _, body = self.admin("/admin/drain")
        self.assertEqual((st, B.json.loads(body)), (200, {"state": "draining"}))
        st, _, body = harness.http_get(self.port, "/health")
        self.assertEqual(st, 503)
        self.assertEqual(B.json.loads(body)["status"], "draining")
        self.assertEqual(self.status()["state"], "draining")
        self.assertEqual(B.metrics(self.port)["roomrelay_draining"], 1)
        self.assertEqual(agent_check(self.agent_port), "drain\n")
        before = B.rejected(self.port, "draining")
        refused = self.ws(room)
        self.assertEqual(refused.status_line, "HTTP/1.1 503 Service Unavailable")
        self.assertEqual(refused.headers["retry-after"], "1")
        self.assertEqual(B.rejected(self.port, "draining"), before + 1)
        # Open connections keep working.
        self.assertEqual(old.echo("during drain"), "during drain")

        st, _, body = self.admin("/admin/undrain")
        self.assertEqual((st, B.json.loads(body)), (200, {"state": "up"}))
        st, _, body = harness.http_get(self.port, "/health")
        self.assertEqual((st, B.json.loads(body)), (200, {"status": "ok"}))
        self.assertEqual(agent_check(self.agent_port), "up\n")
        self.assertEqual(self.status()["state"], "up")
        new = self.ws(room)
        self.assertEqual(new.status, 101)
        old.expect_json(type="member", room=room, sub="anon-" + new.welcome["session"],
                        event="join")
        self.assertEqual(old.echo("after undrain"), "after undrain")


class DrainTimeout(BackendCase):
    @classmethod
    def backend_args(cls):
        return ["--allow-anonymous", "--admin-token-file", admin_file(), "--drain-timeout", "1"]

    def test_connections_left_are_closed_with_1001_at_the_drain_timeout(self):
        async def body():
            a, _ = await B.connect(self.port, "dt")
            b, _ = await B.connect(self.port, "dt2")
            st, _, _ = self.admin("/admin/drain")
            self.assertEqual(st, 200)
            codes = [await B.wait_closed(ws, timeout=15) for ws in (a, b)]
            self.assertEqual(codes, [1001, 1001])
        B.run(body())
        harness.wait_for(lambda: self.status()["connections"] == 0, what="every WebSocket gone")
        self.assertEqual(B.metrics(self.port)['roomrelay_closes_total{code="1001"}'], 2)


class Sigterm(unittest.TestCase):
    def test_sigterm_without_clients_exits_0_before_the_drain_timeout(self):
        proc = harness.start_backend(["--allow-anonymous", "--drain-timeout", "60"])
        proc.kill(signal.SIGTERM)
        self.assertEqual(proc.wait_exit(timeout=20), 0)

    def test_sigterm_with_a_client_closes_it_1001_at_the_drain_timeout_then_exits_0(self):
        proc = harness.start_backend(["--allow-anonymous", "--drain-timeout", "2"])
        try:
            async def body():
                ws, _ = await B.connect(proc.port, "term")
                proc.kill(signal.SIGTERM)
                harness.wait_for(lambda: harness.http_get(proc.port, "/health")[0] == 503,
                                 what="/health to say draining")
                # Still served while draining.
                await B.send_json(ws, type="publish", room="term", data=1, id="t1")
                await B.expect_json(ws, type="message", seq=1)
                await B.expect_json(ws, type="ack", id="t1", seq=1)
                self.assertEqual(await B.wait_closed(ws, timeout=15), 1001)
            B.run(body())
            self.assertEqual(proc.wait_exit(timeout=20), 0)
        finally:
            proc.stop(signal.SIGKILL)


class CommandLine(unittest.TestCase):
    CASES = [
        (["--max-message", "abc"], "--max-message"),
        (["--trusted-proxy", "300.1.1.1/8"], "--trusted-proxy"),
        (["--trusted-proxy", "10.0.0.0/33"], "--trusted-proxy"),
        (["--ping-interval", "0"], "--ping-interval"),
        (["--max-connections", "-1"], "--max-connections"),
        (["--listen", "nowhere"], "--listen"),
        (["--listen", "127.0.0.1:99999"], "--listen"),
        (["--agent-check-listen", "127.0.0.1"], "--agent-check-listen"),
    ]

    def test_bad_values_exit_2_with_one_line_naming_the_flag(self):
        for args, flag in self.CASES:
            p = subprocess.run([harness.binary("roomrelay-backend"), "--allow-anonymous"] + args,
                               capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, **harness.SANITIZER_ENV))
            self.assertEqual((p.returncode, p.stdout), (2, ""), f"{args}: {p.stderr}")
            lines = p.stderr.splitlines()
            self.assertEqual(len(lines), 1, f"{args}: {p.stderr}")
            self.assertTrue(lines[0].startswith(f"roomrelay-backend: {flag}"), lines[0])


if __name__ == "__main__":
    tap.main()
