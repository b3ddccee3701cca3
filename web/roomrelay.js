// roomrelay.js: a browser client for roomrelay's client protocol (docs/protocol.md),
// one connection in one room, that outlives its WebSocket. It reconnects with capped
// exponential backoff and jitter (or after a `migrate`'s delay), resumes with
// `since=<last seq>`, resends the publishes that got no ack under the same id (the
// server publishes an id once), and never delivers a seq twice.
// It is not a multi-room client (no join/leave) and has no dependencies: an ES module
// on the platform's WebSocket. API and policy: web/README.md.

const PROTOCOL = "roomrelay.v1";
// Close codes that mean the client itself sent something wrong: the same thing would
// be sent again, so there is no reconnect.
const FATAL_CLOSES = new Set([1002, 1003, 1007, 1009]);
const DEFAULTS = {
    token: null,
    since: null,
    backoffInitialMs: 500,
    backoffMaxMs: 15000,
    maxAttempts: Infinity,
    unavailableRetryMs: 500,
    WebSocket: globalThis.WebSocket,
};

function randomHex(bytes) {
    const b = new Uint8Array(bytes);
    globalThis.crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function withQuery(base, args) {
    const q = Object.entries(args)
        .filter(([, v]) => v !== null && v !== undefined)
        .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
        .join("&");
    return base + (base.includes("?") ? "&" : "?") + q;
}

// "Equal jitter": half the capped exponential delay, plus a random part of the other
// half, so that clients dropped together do not come back together.
export function backoffDelay(attempt, initialMs, maxMs, random = Math.random) {
    const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
    return Math.round(cap / 2 + random() * (cap / 2));
}

export class RoomRelayError extends Error {
    constructor(code, message, id) {
        super(`${code}: ${message}`);
        this.code = code;
        this.id = id;
    }
}

export class RoomRelayClient {
    constructor(url, options) {
        const o = { ...DEFAULTS, ...options };
        if (!o.room) throw new TypeError("roomrelay: options.room is required");
        if (!o.WebSocket) throw new TypeError("roomrelay: no WebSocket implementation");
        this.room = o.room;
        this.options = o;
        this.lastSeq = o.since;
        this.instance = null;
        this.session = null;
        this.state = "connecting";
        this.connections = 0;
        this.duplicatesDropped = 0;
        this._urls = typeof url === "function" ? null : [].concat(url);
        this._urlFn = typeof url === "function" ? url : null;
        this._idPrefix = randomHex(6);
        this._nextId = 0;
        this._pending = new Map(); // id -> {frame, resolve, reject, sent}
        this._handlers = new Map();
        this._ws = null;
        this._welcomed = false;
        this._failures = 0; // connection attempts in a row that got no welcome
        this._migrateMs = null;
        this._timer = null;
        this._presenceWaiters = [];
        // After the caller's synchronous on() calls, so that they see the first attempt.
        queueMicrotask(() => this.state === "connecting" && this._open());
    }

    // Subscribe to an event; returns the function that unsubscribes.
    on(type, fn) {
        if (!this._handlers.has(type)) this._handlers.set(type, new Set());
        this._handlers.get(type).add(fn);
        return () => this.off(type, fn);
    }

    off(type, fn) {
        this._handlers.get(type)?.delete(fn);
    }

    // Resolves with the ack {id, seq}; rejects on an `error` naming the id, or on close().
    publish(data) {
        if (this.state === "closed") {
            return Promise.reject(new RoomRelayError("closed", "client closed"));
        }
        const id = `${this._idPrefix}-${++this._nextId}`;
        const frame = JSON.stringify({ type: "publish", room: this.room, data, id });
        return new Promise((resolve, reject) => {
            this._pending.set(id, { frame, resolve, reject, sent: 0 });
            if (this._welcomed) this._sendPending(id);
        });
    }

    // Resolves with the next `presence` answer's members.
    presence() {
        return new Promise((resolve) => {
            this._presenceWaiters.push(resolve);
            if (this._welcomed) this._send({ type: "presence", room: this.room });
        });
    }

    get pending() {
        return this._pending.size;
    }

    // Stops for good: no reconnect; publishes without an ack are rejected.
    close() {
        if (this.state === "closed") return;
        this.state = "closed";
        clearTimeout(this._timer);
        if (this._ws) this._ws.close(1000);
        for (const [id, p] of this._pending) {
            p.reject(new RoomRelayError("closed", "client closed", id));
        }
        this._pending.clear();
    }

    _emit(type, detail) {
        for (const fn of this._handlers.get(type) || []) {
            try {
                fn(detail);
            } catch (e) {
                setTimeout(() => { throw e; });
            }
        }
    }

    _url(attempt) {
        const base = this._urlFn ? this._urlFn(attempt) : this._urls[attempt % this._urls.length];
        return withQuery(base, { room: this.room, since: this.lastSeq });
    }

    _open() {
        const o = this.options;
        const url = this._url(this.connections++);
        const protocols = o.token ? [PROTOCOL, "bearer." + o.token] : [PROTOCOL];
        this.state = "connecting";
        this._welcomed = false;
        this._migrateMs = null;
        const ws = new o.WebSocket(url, protocols);
        this._ws = ws;
        ws.onmessage = (ev) => this._onFrame(ws, ev.data);
        ws.onclose = (ev) => this._onClose(ws, ev);
        this._emit("connecting", { url, attempt: this._failures });
    }

    _send(obj) {
        this._ws.send(JSON.stringify(obj));
    }

    _sendPending(id) {
        const p = this._pending.get(id);
        p.sent++;
        this._ws.send(p.frame);
    }

    _onFrame(ws, text) {
        if (ws !== this._ws || typeof text !== "string") return;
        let m;
        try {
            m = JSON.parse(text);
        } catch {
            return;
        }
        switch (m.type) {
        case "welcome":
            return this._onWelcome(m);
        case "joined":
            if (m.room === this.room && m.complete === false) {
                this._emit("gap", { room: m.room, since: this.lastSeq, seq: m.seq });
            }
            return this._emit("joined", m);
        case "message":
            return this._onMessage(m);
        case "ack":
            return this._onAck(m);
        case "presence":
            if (m.room === this.room) this._presenceWaiters.splice(0).forEach((f) => f(m.members));
            return this._emit("presence", m);
        case "error":
            return this._onError(m);
        case "migrate":
            this._migrateMs = Math.max(0, Number(m.reconnect_after_ms) || 0);
            return this._emit("migrate", m);
        default:
            return this._emit(m.type, m);
        }
    }

    _onWelcome(m) {
        const reconnected = this.instance !== null;
        this.instance = m.instance;
        this.session = m.session;
        this.state = "open";
        this._welcomed = true;
        this._failures = 0;
        if (this.lastSeq === null) this.lastSeq = m.seq;
        this._emit("welcome", { ...m, reconnected });
        // The server remembers publish ids: one that was published before the drop is
        // answered with its original seq, and not published again.
        for (const id of this._pending.keys()) this._sendPending(id);
        if (this._presenceWaiters.length) this._send({ type: "presence", room: this.room });
    }

    _onMessage(m) {
        if (m.room === this.room) {
            if (this.lastSeq !== null && m.seq <= this.lastSeq) {
                this.duplicatesDropped++;
                return;
            }
            if (this.lastSeq !== null && m.seq !== this.lastSeq + 1) {
                this._emit("gap", { room: m.room, since: this.lastSeq, seq: m.seq - 1 });
            }
            this.lastSeq = m.seq;
        }
        this._emit("message", m);
    }

    _onAck(m) {
        const p = this._pending.get(m.id);
        this._emit("ack", m);
        if (!p) return;
        this._pending.delete(m.id);
        p.resolve({ id: m.id, seq: m.seq, sent: p.sent });
    }

    _onError(m) {
        this._emit("error", m);
        const p = m.id !== undefined ? this._pending.get(m.id) : undefined;
        if (!p) return;
        if (m.code === "unavailable") {
            // The outcome was lost on the server's side: the same id again is safe.
            const ws = this._ws;
            setTimeout(() => {
                if (this._ws === ws && this._welcomed && this._pending.has(m.id)) {
                    this._sendPending(m.id);
                }
            }, this.options.unavailableRetryMs);
            return;
        }
        this._pending.delete(m.id);
        p.reject(new RoomRelayError(m.code, m.message, m.id));
    }

    _onClose(ws, ev) {
        if (ws !== this._ws) return;
        this._ws = null;
        const o = this.options;
        const wasOpen = this._welcomed;
        this._welcomed = false;
        if (!wasOpen) this._failures++;
        const detail = { code: ev.code, reason: ev.reason, wasClean: ev.wasClean,
                         willReconnect: false };
        if (this.state === "closed") return this._emit("close", detail);
        if (FATAL_CLOSES.has(ev.code) || this._failures > o.maxAttempts) {
            this.close();
            return this._emit("close", detail);
        }
        const delayMs = this._migrateMs !== null
            ? this._migrateMs
            : backoffDelay(this._failures, o.backoffInitialMs, o.backoffMaxMs);
        this.state = "reconnecting";
        this._emit("close", { ...detail, willReconnect: true, delayMs,
                              migrated: this._migrateMs !== null });
        this._timer = setTimeout(() => this._open(), delayMs);
    }
}

// connect(url, {room, token, ...}): url is a ws:// or wss:// URL of the /ws endpoint,
// an array of them (each reconnect tries the next), or a function(attempt) -> URL.
export function connect(url, options) {
    return new RoomRelayClient(url, options);
}
