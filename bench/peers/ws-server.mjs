// The node `ws` peer for `make bench-peers`: the minimal roomrelay protocol
// that roomrelay-bench speaks, written the way a node application would
// (JSON.parse each client message, JSON.stringify each event once,
// socket.send() per member). GET /ws?room=R joins R; a welcome on open;
// publish -> message {room, seq, from, data, ts} to every member, then ack.
// Not a server: no auth, no limits, no presence.
//
// Usage: node bench/peers/ws-server.mjs PORT
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] || 8091);
const rooms = new Map(); // name -> { seq, members: Set }
let sessions = 0n;

const http = createServer((req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server: http, path: '/ws', perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const name = new URL(req.url, 'http://x').searchParams.get('room');
  if (!name) {
    ws.close(1008);
    return;
  }
  let room = rooms.get(name);
  if (!room) {
    room = { seq: 0, members: new Set() };
    rooms.set(name, room);
  }
  room.members.add(ws);
  sessions += 1n;
  const session = ((sessions * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn)
    .toString(16).padStart(16, '0');
  const sub = `anon-${session}`;
  ws.send(JSON.stringify({ type: 'welcome', instance: 'node-ws', session, room: name, seq: room.seq }));
  ws.on('message', (raw, isBinary) => {
    if (isBinary) return;
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    if (m.type !== 'publish' || m.room !== name) return;
    const seq = ++room.seq;
    const out = JSON.stringify({ type: 'message', room: name, seq, from: sub, data: m.data, ts: Date.now() });
    for (const peer of room.members) peer.send(out);
    ws.send(JSON.stringify({ type: 'ack', id: m.id, seq }));
  });
  ws.on('close', () => room.members.delete(ws));
  ws.on('error', () => {});
});

http.listen(port, '127.0.0.1');
