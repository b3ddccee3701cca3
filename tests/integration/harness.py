"""Starts the real parts on loopback for integration tests and stops them.

Ports are picked free at run time, readiness is waited for by polling the
real thing (a TCP connect, an HTTP answer), and every process started here
is killed when the test process exits, whatever way it exits.
"""
import atexit
import os
import shutil
import signal
import socket
import sys
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
# Binaries under test: the ASan + UBSan builds when present (make test builds
# them), so that a memory error on any path a test walks fails that test.
ASAN_BUILD = os.path.join(BUILD, "asan")
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=86",
}
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def binary(name):
    asan = os.path.join(ASAN_BUILD, name)
    return asan if os.path.exists(asan) else os.path.join(BUILD, name)
HAPROXY_DIR = os.path.join(ROOT, "haproxy")

_procs = []
_tmpdirs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    if os.environ.get("RR_TEST_KEEP"):
        if _tmpdirs:
            print(f"# RR_TEST_KEEP: logs and files left in {' '.join(_tmpdirs)}", file=sys.stderr)
        return
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: (_cleanup(), os._exit(1)))


def tmpdir():
    d = tempfile.mkdtemp(prefix="rr-test-")
    _tmpdirs.append(d)
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=10.0, what="condition"):
    """Polls pred() until it is true; raises with `what` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Proc:
    """A started process whose output goes to a log file."""

    def __init__(self, name, argv, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(tmpdir(), name + ".log")
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(SANITIZER_ENV)
        full_env.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=full_env, cwd=cwd or ROOT)
        _procs.append(self.p)

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig):
        self.p.send_signal(sig)

    # The signal stop() sends by default; the backend's is SIGINT, since its
    # SIGTERM drains for up to --drain-timeout.
    stop_signal = signal.SIGTERM

    def stop(self, sig=None, timeout=10):
        """Stops the process and returns its exit status; raises if a
        sanitizer reported anything during its life."""
        sig = sig or self.stop_signal
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.assert_clean()
        return self.p.returncode

    def wait_exit(self, timeout=10):
        rc = self.p.wait(timeout)
        self.assert_clean()
        return rc

    def assert_clean(self):
        out = self.output()
        for mark in SANITIZER_MARKS:
            if mark in out:
                raise AssertionError(f"{self.name}: sanitizer report:\n{out[-6000:]}")


def unix_open(path):
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


def start_agent(args, port=None, metrics_port=None, env=None, unix_path=None):
    """Starts roomrelay-spoa on 127.0.0.1:port (a free one by default), or on
    the Unix socket unix_path, and waits until it accepts connections."""
    port = None if unix_path else port or free_port()
    listen = f"unix@{unix_path}" if unix_path else f"127.0.0.1:{port}"
    argv = [binary("roomrelay-spoa"), "--listen", listen, "--threads", "2", "--log-level", "debug"]
    if metrics_port:
        argv += ["--metrics-listen", f"127.0.0.1:{metrics_port}"]
    proc = Proc("spoa", argv + list(args), env=env)
    proc.port = port
    proc.listen = listen
    proc.metrics_port = metrics_port
    wait_for(lambda: (unix_open(unix_path) if unix_path else port_open(port)) or not proc.alive(),
             what="roomrelay-spoa to listen")
    if not proc.alive():
        raise RuntimeError("roomrelay-spoa exited:\n" + proc.output())
    return proc


def start_backend(args=(), port=None, env=None, instance="ws1"):
    """Starts roomrelay-backend (the ASan build when present) and waits until
    /health answers."""
    port = port or free_port()
    argv = [binary("roomrelay-backend"), "--listen", f"127.0.0.1:{port}",
            "--instance-id", instance, "--log-level", "debug"] + list(args)
    proc = Proc("backend-" + instance, argv, env=env)
    proc.stop_signal = signal.SIGINT
    proc.port = port
    wait_for(lambda: port_open(port) or not proc.alive(), what="roomrelay-backend to listen")
    if not proc.alive():
        raise RuntimeError("roomrelay-backend exited:\n" + proc.output())
    return proc


def start_redis(port=None, args=()):
    """Starts a private redis-server on loopback (no persistence) and waits
    until it answers PING. `args` are more redis-server options."""
    port = port or free_port()
    d = tmpdir()
    proc = Proc("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                          "--save", "", "--appendonly", "no", "--dir", d,
                          "--protected-mode", "no"] + list(args))
    proc.port = port

    def pong():
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    wait_for(lambda: pong() or not proc.alive(), what="redis-server to answer PING")
    if not proc.alive():
        raise RuntimeError("redis-server exited:\n" + proc.output())
    return proc


def redis_cmd(port, *args):
    """One command over RESP2; returns the decoded reply (str, int, list, None)."""
    def enc(a):
        b = a if isinstance(a, bytes) else str(a).encode()
        return b"$%d\r\n%s\r\n" % (len(b), b)
    req = b"*%d\r\n" % len(args) + b"".join(enc(a) for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req)
        f = s.makefile("rb")
        return _resp(f)


def _resp(f):
    line = f.readline().rstrip(b"\r\n")
    t, rest = line[:1], line[1:]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise RuntimeError(f"bad RESP line {line!r}")


def start_haproxy(spoa_port, cfg=None, extra_env=None):
    """Starts HAProxy with the shipped config (haproxy/haproxy.cfg) and waits
    until it answers and sees the agent up (or not, if spoa_port is closed)."""
    http_port = free_port()
    d = tmpdir()
    env = {
        "RR_HTTP_BIND": f"127.0.0.1:{http_port}",
        "RR_SPOA_ADDR": f"127.0.0.1:{spoa_port}",
        "RR_HAPROXY_DIR": HAPROXY_DIR,
        "RR_STATS_SOCKET": os.path.join(d, "haproxy.sock"),
    }
    env.update(extra_env or {})
    proc = Proc("haproxy", ["haproxy", "-db", "-f", cfg or os.path.join(HAPROXY_DIR, "haproxy.cfg")],
                env=env)
    proc.port = http_port
    proc.stats_socket = env["RR_STATS_SOCKET"]
    wait_for(lambda: port_open(http_port) or not proc.alive(), what="haproxy to listen")
    if not proc.alive():
        raise RuntimeError("haproxy exited:\n" + proc.output())
    return proc


def haproxy_cmd(proc, cmd):
    """Sends one command to HAProxy's runtime API and returns its answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(proc.stats_socket)
        s.sendall(cmd.encode() + b"\n")
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    return out.decode()


def server_state(proc, backend, server):
    """HAProxy's view of one server: 'UP', 'DOWN', ... from `show stat`."""
    out = haproxy_cmd(proc, "show stat")
    for line in out.splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == backend and f[1] == server:
            return f[17]
    return None


def http_get(port, path, headers=None, timeout=5):
    """GET on loopback. Returns (status, headers dict lower-cased, body str)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()


def metric(port, name):
    """The value of the sample `name` (with its {labels}, if any) on port's
    /metrics; 0.0 when it is not there."""
    status, _, body = http_get(port, "/metrics")
    assert status == 200, status
    for line in body.splitlines():
        key, _, val = line.rpartition(" ")
        if key == name:
            return float(val)
    return 0.0
