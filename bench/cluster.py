#!/usr/bin/python3
"""`make bench-cluster`: the cluster of DESIGN.md §2 (Redis, roomrelay-spoa,
three roomrelay-backends ws1..ws3 on that Redis, HAProxy with the shipped
haproxy/ config) against one roomrelay-backend without Redis, under the same
load from build/roomrelay-bench, in the same run:

  1. fixed rate: R rooms of M members, each room's publisher at RATE/s;
     deliveries/s and publish -> deliver latency (p50/p99), RR_BENCH_RUNS
     times each, the two set-ups taking turns (the report keeps medians);
     the CPU of every process of the cluster, hence Redis CPU per 100k
     deliveries;
  2. ladder: the publish rate raised step by step until deliveries/s stops
     growing or a message goes missing; the peak of each set-up;
  3. drain: a backend holding RR_BENCH_DRAIN_CONNS connections (every room
     claimed for ws1 beforehand) is drained with `roomrelayctl drain ws1`
     while its rooms publish; the clients follow `migrate` through HAProxy
     (roomrelay-bench --reconnect). Sampled every 20 ms from the backends'
     /metrics: the time until ws1 holds no connection, the time until ws2 +
     ws3 hold them all, and the peak rate of handshakes on ws2 + ws3 (the
     reconnect storm), once per value of
     RR_BENCH_DRAIN_RATES (the backends' --drain-rate). The clients count
     missing, duplicated and out-of-order messages across the move.

Pinning (two cores): everything that serves (the one backend; or Redis, the
agent, the three backends and HAProxy) on core 0, roomrelay-bench on core 1.
So both set-ups get one core, and the ratio is the cost of the cluster's
extra hops (HAProxy in the path, Redis between publish and delivery), not a
scaling figure: on one core three backends cannot be faster than one.

Writes bench/results/cluster.json and cluster.md and the part of
docs/benchmarks.md between the cluster-results markers. Knobs (environment):
RR_BENCH_ROOMS (100), RR_BENCH_ROOM_MEMBERS (30), RR_BENCH_RATE (5 publishes/s
per room), RR_BENCH_DURATION (5 s measured), RR_BENCH_RUNS (3),
RR_BENCH_LADDER (10,20,50,100,200,400,800), RR_BENCH_STEP_DURATION (3),
RR_BENCH_DRAIN_CONNS (3000), RR_BENCH_DRAIN_ROOMS (300),
RR_BENCH_DRAIN_RATES (0,1000).
"""
import atexit
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

import jwt  # noqa: E402  (python3-jwt)

BUILD = "build"
BACKEND = os.environ.get("RR_BENCH_BACKEND", f"{BUILD}/roomrelay-backend")
AGENT = f"{BUILD}/roomrelay-spoa"
LOAD = f"{BUILD}/roomrelay-bench"
CTL = f"{BUILD}/roomrelayctl"
SUT_CORE, LOAD_CORE = "0", "1"


def knob(name, default):
    return os.environ.get("RR_BENCH_" + name, default)


ROOMS = int(knob("ROOMS", "100"))
MEMBERS = int(knob("ROOM_MEMBERS", "30"))
RATE = knob("RATE", "5")
DURATION = knob("DURATION", "5")
RUNS = int(knob("RUNS", "3"))
LADDER = knob("LADDER", "10,20,50,100,200,400,800")
STEP_DURATION = knob("STEP_DURATION", "3")
DRAIN_CONNS = int(knob("DRAIN_CONNS", "3000"))
DRAIN_ROOMS = int(knob("DRAIN_ROOMS", "300"))
DRAIN_RATES = [r for r in knob("DRAIN_RATES", "0,1000").split(",") if r]
SAMPLE_S = 0.02

tmp = tempfile.mkdtemp(prefix="rr-bench-cluster.")
running = []


def log(msg):
    print(f"bench-cluster: {msg}", file=sys.stderr, flush=True)


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in running:
        running.remove(p)


def stop_all():
    # A backend's SIGTERM drains; SIGINT stops it at once.
    for p in reversed(list(running)):
        stop(p, signal.SIGINT if getattr(p, "is_backend", False) else signal.SIGTERM)


atexit.register(stop_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))


def start(name, args, env=None, core=SUT_CORE, out=None, err=None):
    """args on core, its output into tmp/NAME.log (or the files out, err)."""
    with open(out or os.path.join(tmp, name + ".log"), "wb") as o, \
            open(err or os.devnull, "wb") as e:
        p = subprocess.Popen(["taskset", "-c", core] + args, stdout=o,
                             stderr=e if err else subprocess.STDOUT,
                             env=dict(os.environ, **(env or {})))
    p.name = name
    running.append(p)
    return p


def wait_for(pred, what, proc=None, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"bench-cluster: {proc.name} exited while waiting for {what}; "
                     f"see {tmp}/{proc.name}.log")
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"bench-cluster: no {what} after {timeout:.0f} s (logs in {tmp})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def metrics(port):
    status, body = http_get(port, "/metrics")
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
    return out


def redis(port, *lines):
    """Runs redis-cli commands (one per line) against port; its output."""
    r = subprocess.run(["redis-cli", "-p", str(port)], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def haproxy_servers(sock):
    """{server: status} of backend be_ws, from the runtime API's show stat."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sock)
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    out = {}
    for row in data.decode().splitlines():
        f = row.split(",")
        if len(f) > 17 and f[0] == "be_ws" and f[1].startswith("ws"):
            out[f[1]] = f[17]
    return out


def welcome_instance(port, room, token):
    """A WebSocket handshake through HAProxy: the welcome's instance."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((f"GET /ws?room={room}&access_token={token} HTTP/1.1\r\nHost: x\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 6:
            chunk = s.recv(4096)
            if not chunk:
                return None
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            return None
        n = rest[1] & 0x7F
        off = 2 + (2 if n == 126 else 0)
        if n == 126:
            n = int.from_bytes(rest[2:4], "big")
        while len(rest) < off + n:
            rest += s.recv(4096)
        return json.loads(rest[off:off + n]).get("instance")


class Single:
    """One roomrelay-backend, no Redis: the baseline."""

    def __init__(self):
        self.port = free_port()
        self.p = start("single", [BACKEND, "--listen", f"127.0.0.1:{self.port}", "--redis", "none",
                                  "--allow-anonymous", "--publish-rate", "0",
                                  "--max-connections", "20000", "--log-level", "warn"])
        self.p.is_backend = True
        wait_for(lambda: http_get(self.port, "/health")[0] == 200, "backend /health", self.p)

    def bench_args(self):
        return ["--server", f"127.0.0.1:{self.port}", "--server-pid", str(self.p.pid),
                "--cpu-pids", f"backend={self.p.pid}"]

    def stop(self):
        stop(self.p, signal.SIGINT)


class Cluster:
    """Redis, the agent, ws1..ws3 and HAProxy, as `make run` starts them."""

    def __init__(self, drain_rate="0"):
        self.secret = os.path.join(tmp, "hmac.secret")
        with open(self.secret, "w") as f:
            f.write(os.urandom(32).hex())
        now = int(time.time())
        self.token = jwt.encode({"sub": "bench", "iat": now, "exp": now + 3600},
                                open(self.secret, "rb").read(), algorithm="HS256")
        keys = ["--hmac-secret-file", self.secret]
        self.redis_port = free_port()
        self.procs = {}
        self.procs["redis"] = start("redis", ["redis-server", "--bind", "127.0.0.1", "--port",
                                              str(self.redis_port), "--save", "", "--appendonly",
                                              "no", "--dir", tmp, "--protected-mode", "no"])
        wait_for(lambda: redis(self.redis_port, "PING") == "PONG", "Redis", self.procs["redis"])
        spoa_port, self.spoa_metrics = free_port(), free_port()
        self.procs["spoa"] = start("spoa", [AGENT, "--listen", f"127.0.0.1:{spoa_port}",
                                            "--metrics-listen", f"127.0.0.1:{self.spoa_metrics}",
                                            "--redis", f"127.0.0.1:{self.redis_port}",
                                            "--threads", "1", "--registry-refresh", "200",
                                            "--log-level", "warn"] + keys)
        wait_for(lambda: http_get(self.spoa_metrics, "/health")[0] == 200, "agent /health",
                 self.procs["spoa"])
        env = {}
        self.ports = {}
        for i in (1, 2, 3):
            name, port, agent = f"ws{i}", free_port(), free_port()
            self.ports[name] = port
            p = start(name, [BACKEND, "--listen", f"127.0.0.1:{port}", "--instance-id", name,
                             "--redis", f"127.0.0.1:{self.redis_port}",
                             "--trusted-proxy", "127.0.0.1/32",
                             "--agent-check-listen", f"127.0.0.1:{agent}",
                             "--publish-rate", "0", "--max-connections", "20000",
                             "--heartbeat-interval", "1", "--drain-rate", drain_rate,
                             "--drain-timeout", "60", "--log-level", "warn"] + keys)
            p.is_backend = True
            self.procs[name] = p
            env[f"RR_WS{i}_ADDR"] = f"127.0.0.1:{port}"
            env[f"RR_WS{i}_AGENT"] = str(agent)
        for name, port in self.ports.items():
            wait_for(lambda: http_get(port, "/health")[0] == 200, f"{name} /health",
                     self.procs[name])
        self.port = free_port()
        self.sock = os.path.join(tmp, "haproxy.sock")
        env.update(RR_HTTP_BIND=f"127.0.0.1:{self.port}", RR_SPOA_ADDR=f"127.0.0.1:{spoa_port}",
                   RR_HAPROXY_DIR=os.path.abspath("haproxy"), RR_STATS_SOCKET=self.sock)
        self.procs["haproxy"] = start("haproxy", ["haproxy", "-db", "-f", "haproxy/haproxy.cfg"],
                                      env=env)
        wait_for(lambda: http_get(self.port, "/demo",
                                  {"Authorization": "Bearer " + self.token})[0] == 200,
                 "HAProxy answering through the agent", self.procs["haproxy"])
        wait_for(lambda: set(haproxy_servers(self.sock).values()) == {"UP"}
                 and len(haproxy_servers(self.sock)) == 3, "HAProxy to see ws1..ws3 UP",
                 self.procs["haproxy"])
        # The agent reads the registry every 200 ms: wait until it places
        # rooms on all three backends.
        seen, probes = set(), iter(range(10000))
        wait_for(lambda: seen.add(welcome_instance(self.port, f"probe-{next(probes)}",
                                                   self.token)) or len(seen - {None}) == 3,
                 "the agent to place rooms on all three backends")

    def pids(self):
        return ",".join(f"{n}={p.pid}" for n, p in self.procs.items())

    def bench_args(self):
        return ["--server", f"127.0.0.1:{self.port}", "--query", "access_token=" + self.token,
                "--cpu-pids", self.pids()]

    def stop(self):
        for name in ("haproxy", "ws1", "ws2", "ws3", "spoa", "redis"):
            stop(self.procs[name], signal.SIGINT if name.startswith("ws") else signal.SIGTERM)


def run_bench(label, target, args):
    """roomrelay-bench on the load core against target; its JSON."""
    out, err = (os.path.join(tmp, f"{label}.{ext}") for ext in ("json", "err"))
    log(label)
    p = start("bench-" + label, [LOAD] + target.bench_args() + ["--label", label] + args,
              core=LOAD_CORE, out=out, err=err)
    return p, out, err


def finish(p, out, err):
    p.wait()
    running.remove(p)
    result = benchlib.load_json(out)
    if result is None:
        log(f"{p.name}: no result; its stderr:")
        sys.stderr.write(open(err).read()[-2000:])
    return result


def bench(label, target, args):
    return finish(*run_bench(label, target, args))


LOAD_ARGS = ["--connections", str(ROOMS * MEMBERS), "--rooms", str(ROOMS), "--hold", "1"]


def fixed_rate(label, target):
    return bench(label, target, LOAD_ARGS + ["--rates", RATE, "--warmup", "1",
                                             "--duration", DURATION])


def ladder(label, target):
    return bench(label, target, LOAD_ARGS + ["--rates", LADDER, "--ladder", "--warmup", "1",
                                             "--duration", STEP_DURATION, "--drain-ms", "3000"])


def drain(drain_rate):
    """One drain of ws1 holding DRAIN_CONNS connections; its figures."""
    c = Cluster(drain_rate)
    rooms = [f"drain-{i}" for i in range(DRAIN_ROOMS)]
    redis(c.redis_port, *(f"SET rr:{{{r}}}:owner ws1" for r in rooms))
    p, out, err = run_bench(f"drain-rate-{drain_rate}", c, [
        "--connections", str(DRAIN_CONNS), "--rooms", str(DRAIN_ROOMS), "--room-prefix", "drain-",
        "--reconnect", "--rates", "2", "--warmup", "1", "--duration", "15",
        "--drain-ms", "30000", "--hold", "0"])
    wait_for(lambda: "measuring" in open(err).read(), "roomrelay-bench to publish", p, 120)
    ws = {n: metrics(port) for n, port in c.ports.items()}
    held = ws["ws1"].get("roomrelay_connections", 0)
    samples = []
    stop_sampling = threading.Event()

    def sample():
        while not stop_sampling.is_set():
            t = time.monotonic()
            row = {"t": t}
            for n, port in c.ports.items():
                m = metrics(port)
                row[n] = (m.get("roomrelay_connections", 0),
                          m.get("roomrelay_connections_total", 0))
            samples.append(row)
            time.sleep(max(0.0, SAMPLE_S - (time.monotonic() - t)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    subprocess.run([CTL, "--redis", f"127.0.0.1:{c.redis_port}", "drain", "ws1"], check=True,
                   capture_output=True, timeout=10)
    wait_for(lambda: samples and samples[-1]["t"] > t0 and samples[-1]["ws1"][0] == 0
             and samples[-1]["ws2"][0] + samples[-1]["ws3"][0] >= held,
             "ws1 to empty and its clients to reconnect", p, 120)
    stop_sampling.set()
    sampler.join()
    result = finish(p, out, err)
    c.stop()
    empty_at = next(s["t"] for s in samples if s["t"] > t0 and s["ws1"][0] == 0)
    back_at = next(s["t"] for s in samples
                   if s["t"] > t0 and s["ws2"][0] + s["ws3"][0] >= held)
    others = [(s["t"], s["ws2"][1] + s["ws3"][1]) for s in samples]

    def peak(window):
        best, j = 0.0, 0
        for i in range(len(others)):
            while others[i][0] - others[j][0] > window:
                j += 1
            if i > j:
                best = max(best, (others[i][1] - others[j][1]) / (others[i][0] - others[j][0]))
        return best

    return {
        "drain_rate": int(drain_rate),
        "connections_held": held,
        "time_to_empty_s": round(empty_at - t0, 3),
        "time_to_all_reconnected_s": round(back_at - t0, 3),
        "peak_handshakes_per_s_100ms": round(peak(0.1)),
        "peak_handshakes_per_s_1s": round(peak(1.0)),
        "samples": len(samples),
        "bench": result,
    }


def main():
    for tool in (BACKEND, AGENT, LOAD, CTL):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench-cluster: {tool} is missing: run make first")
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench-cluster: needs two cores (servers on core 0, load on core 1)")
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    result = {"date": date, "loadavg_before": load_before,
              "machine": benchlib.machine(haproxy=(["haproxy", "-v"], r"HAProxy version (\S+)"),
                                          redis=(["redis-server", "--version"], r"v=(\S+)")),
              "params": {"rooms": ROOMS, "members_per_room": MEMBERS, "rate": float(RATE),
                         "duration_s": int(DURATION), "runs": RUNS, "ladder": LADDER,
                         "step_duration_s": int(STEP_DURATION), "drain_connections": DRAIN_CONNS,
                         "drain_rooms": DRAIN_ROOMS, "drain_rates": DRAIN_RATES},
              "single": {"fixed": [], "ladder": None}, "cluster": {"fixed": [], "ladder": None},
              "drain": []}
    setups = (("single", Single), ("cluster", Cluster))
    for k in range(1, RUNS + 1):
        for name, make in setups:
            t = make()
            result[name]["fixed"].append(fixed_rate(f"{name}-fixed{k}", t))
            t.stop()
    for name, make in setups:
        t = make()
        result[name]["ladder"] = ladder(f"{name}-ladder", t)
        t.stop()
    for rate in DRAIN_RATES:
        result["drain"].append(drain(rate))
    os.makedirs("bench/results", exist_ok=True)
    with open("bench/results/cluster.json", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    md = report(result)
    with open("bench/results/cluster.md", "w") as f:
        f.write("# The cluster benchmark (`make bench-cluster`)\n\n" + md)
    benchlib.replace_between_markers("docs/benchmarks.md", "cluster-results", md,
                                     "bench-cluster")
    log("wrote bench/results/cluster.json and cluster.md")
    print(md)
    shutil.rmtree(tmp, ignore_errors=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def step(r, i=0):
    return r["steps"][i] if r and len(r.get("steps", [])) > i else None


def fixed(result, name, key):
    return median([(step(r) or {}).get(key) for r in result[name]["fixed"]])


def peak_step(r):
    """The step of the ladder's peak (no loss), or None."""
    if not r:
        return None
    ok = [s for s in r["steps"] if s["missing"] == 0]
    return max(ok, key=lambda s: s["deliveries_per_s"]) if ok else None


def redis_ms_per_100k(s):
    if not s or not s.get("deliveries_in_window") or "redis" not in s.get("cpu", {}):
        return None
    secs = s["deliveries_in_window"] / s["deliveries_per_s"] if s["deliveries_per_s"] else 0
    return s["cpu"]["redis"] * secs * 1000 / s["deliveries_in_window"] * 100000


def fmt(v, digits=0, unit=""):
    return "–" if v is None else f"{v:,.{digits}f}{unit}"


def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}x"


def report(r):
    p, m = r["params"], r["machine"]
    L = [f"Run {r['date']} on {m['cores']} × {m['cpu']}, Linux {m['kernel']}, "
         f"HAProxy {m['haproxy']}, Redis {m['redis']}; load average before: "
         f"{r['loadavg_before']}.", "",
         f"{p['rooms']} rooms of {p['members_per_room']} members "
         f"({p['rooms'] * p['members_per_room']} connections), one publisher per room, "
         "`data` of 100 bytes. *single*: one roomrelay-backend, `--redis none`, clients "
         "connected to it directly. *cluster*: three backends on one Redis, clients through "
         "HAProxy (JWT checked and room routed by roomrelay-spoa). Everything that serves on "
         "core 0, roomrelay-bench on core 1: the ratio is the price of the cluster's hops on "
         "equal hardware, not a scaling figure.", "",
         f"**Fixed rate**: {p['rate']:g} publishes/s per room, {p['duration_s']} s measured, "
         f"median of {p['runs']} runs each.", "",
         "| | single | cluster | cluster / single |", "|---|---|---|---|"]
    rows = [("deliveries/s", "deliveries_per_s", 0, 1), ("p50 latency (ms)", "p50_us", 2, 1e-3),
            ("p99 latency (ms)", "p99_us", 2, 1e-3), ("missing", "missing", 0, 1)]
    for title, key, digits, scale in rows:
        a, b = fixed(r, "single", key), fixed(r, "cluster", key)
        a = None if a is None else a * scale
        b = None if b is None else b * scale
        L.append(f"| {title} | {fmt(a, digits)} | {fmt(b, digits)} | "
                 f"{ratio(b, a) if key != 'missing' else ''} |")
    fixed_steps = [step(x) for x in r["cluster"]["fixed"] if step(x)]
    red = median([redis_ms_per_100k(s) for s in fixed_steps])
    L.append(f"| Redis CPU per 100k deliveries (ms) | – | {fmt(red, 1)} | |")
    if fixed_steps:
        cpu = {k: median([s["cpu"].get(k) for s in fixed_steps]) for k in fixed_steps[0]["cpu"]}
        L.append("")
        L.append("CPU of each process of the cluster at the fixed rate (cores, median): " +
                 ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) + "; single backend: " +
                 fmt(fixed(r, "single", "server_cpu"), 2) + ".")
    ps, pc = peak_step(r["single"]["ladder"]), peak_step(r["cluster"]["ladder"])
    L += ["", f"**Ladder** (publishes/s per room: {p['ladder']}, {p['step_duration_s']} s a "
          "step, until deliveries/s stops growing by 5 % or a message goes missing):", "",
          "| | single | cluster | cluster / single |", "|---|---|---|---|",
          f"| peak deliveries/s (nothing missing) | {fmt(ps and ps['deliveries_per_s'])} | "
          f"{fmt(pc and pc['deliveries_per_s'])} | "
          f"{ratio(pc and pc['deliveries_per_s'], ps and ps['deliveries_per_s'])} |",
          f"| at publishes/s per room | {fmt(ps and ps['rate'])} | {fmt(pc and pc['rate'])} | |",
          f"| p99 at the peak (ms) | {fmt(ps and ps['p99_us'] / 1e3, 2)} | "
          f"{fmt(pc and pc['p99_us'] / 1e3, 2)} | |",
          f"| Redis CPU per 100k deliveries at the peak (ms) | – | "
          f"{fmt(redis_ms_per_100k(pc), 1)} | |"]
    if pc:
        L.append("")
        L.append("CPU at the cluster's peak (cores): " +
                 ", ".join(f"{k} {v:.2f}" for k, v in pc["cpu"].items()) +
                 f"; roomrelay-bench {pc['generator_cpu']:.2f}.")
    L += ["", f"**Drain** of ws1 holding {p['drain_connections']} connections "
          f"({p['drain_rooms']} rooms, each publishing 2/s throughout) with `roomrelayctl "
          "drain ws1`; the clients follow `migrate` through HAProxy and resume with `since`. "
          "Sampled every 20 ms from the backends' /metrics.", "",
          "| --drain-rate | held | until empty (s) | until all back (s) | peak handshakes/s on "
          "ws2+ws3, 100 ms / 1 s window | migrates | reconnects | refused reconnects | missing | "
          "duplicates | gaps |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in r["drain"]:
        s = step(d["bench"]) or {}
        L.append(f"| {d['drain_rate'] or '0 (all at once)'} | {fmt(d['connections_held'])} | "
                 f"{d['time_to_empty_s']:.2f} | {d['time_to_all_reconnected_s']:.2f} | "
                 f"{fmt(d['peak_handshakes_per_s_100ms'])} / "
                 f"{fmt(d['peak_handshakes_per_s_1s'])} | {fmt(s.get('migrates'))} | "
                 f"{fmt(s.get('reconnects'))} | {fmt(s.get('reconnect_failures'))} | "
                 f"{fmt(s.get('missing'))} | {fmt(s.get('duplicates'))} | {fmt(s.get('gaps'))} |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
