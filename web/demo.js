// The demo page's logic (web/index.html): one roomrelay.js client in one room, its
// messages, presence, which backend serves it, and a log of every reconnect. Not part of
// the library.
import { connect } from "./roomrelay.js";

const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
const wsUrl = params.get("ws") || `ws://${location.hostname || "127.0.0.1"}:8080/ws`;
const room = params.get("room") || "lobby";
const token = params.get("token");
const $ = (id) => document.getElementById(id);

function tokenSub(jwt) {
    try {
        const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
        return JSON.parse(atob(part)).sub;
    } catch {
        return null;
    }
}
const me = token ? tokenSub(token) : null;

function item(list, cls, ...parts) {
    const li = document.createElement("li");
    if (cls) li.className = cls;
    for (const [c, text] of parts) {
        const span = document.createElement("span");
        if (c) span.className = c;
        span.textContent = text;
        li.append(span, " ");
    }
    $(list).append(li);
    li.scrollIntoView({ block: "nearest" });
    return li;
}

function log(text, cls) {
    item("log", cls, [null, `${new Date().toLocaleTimeString()} ${text}`]);
}

const client = connect(wsUrl, { room, token });

function show() {
    $("room").textContent = room;
    $("state").textContent = client.state;
    $("state").className = "state " + client.state;
    $("instance").textContent = client.instance || "—";
    $("seq").textContent = client.lastSeq ?? "—";
}

function refreshPresence() {
    client.presence().then((members) => {
        $("members").replaceChildren();
        for (const m of members) item("members", null, [null, `${m.sub} (on ${m.instance})`]);
    });
}

client.on("connecting", ({ url }) => {
    log(`connecting to ${url.replace(/^wss?:\/\/[^/]+/, "")}`);
    show();
});
client.on("welcome", (w) => {
    log(`${w.reconnected ? "resumed" : "joined"} on ${w.instance}, session ${w.session}, ` +
        `room seq ${w.seq}`);
    show();
    refreshPresence();
});
client.on("joined", (j) => {
    if (j.recovered !== undefined) {
        log(`replayed ${j.recovered} missed message(s), complete: ${j.complete}`);
    }
});
client.on("gap", (g) => log(`gap: messages after ${g.since} up to ${g.seq} are lost`, "warn"));
client.on("migrate", (m) => {
    log(`migrate (${m.reason}): reconnect in ${m.reconnect_after_ms} ms`, "warn");
});
client.on("close", (c) => {
    const next = c.willReconnect
        ? `, reconnecting in ${c.delayMs} ms${c.migrated ? " (migrate)" : ""}`
        : ", gave up";
    log(`closed ${c.code}${c.reason ? " " + c.reason : ""}${next}`, "warn");
    show();
});
client.on("error", (e) => log(`error ${e.code}: ${e.message}`, "warn"));
client.on("member", (m) => {
    log(`${m.sub} ${m.event === "join" ? "joined" : "left"}`);
    refreshPresence();
});
client.on("message", (m) => {
    const text = typeof m.data?.text === "string" ? m.data.text : JSON.stringify(m.data);
    item("messages", m.from === me ? "mine" : null,
         ["seq", `#${m.seq}`], ["from", m.from], [null, text]);
    show();
});

$("send").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("text").value;
    $("text").value = "";
    const pending = item("messages", "pending", [null, `sending: ${text}`]);
    client.publish({ text }).then(
        (ack) => {
            pending.remove();
            if (ack.sent > 1) log(`message #${ack.seq} acked after ${ack.sent} sends`);
        },
        (err) => { pending.textContent = `not sent (${err.code}): ${text}`; });
});

window.roomrelay = client;
show();
