// One interop client on node's `ws` (tests/integration/test_interop.py runs it).
// Not a general client: it does the script below once and exits.
//
// It connects to URL?room=ROOM with the token in an Authorization header,
// asks for presence until MEMBERS distinct subs are in the room, then
// publishes PUBLISH messages {from: LABEL, i, text: "héllo ✓ 🎲"}, the last
// text 1000 times over (15 KB: a 16-bit frame length), and exits 0 once it
// has received EXPECT `message` frames and an ack for each of its publishes.
// Stdout: first {"client": {protocol, extensions}}, then every frame received,
// one JSON object a line. Exit 2 with a reason on stderr on error or after
// --timeout.
//
// The token is --token, or made here with `jose` from --hmac-secret-file and
// --sub, so that some test tokens come from a JWT library other than the
// server's libjwt and the test's python3-jwt.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import WebSocket from 'ws';

const { values: opt } = parseArgs({
    options: {
        url: { type: 'string' },
        room: { type: 'string' },
        token: { type: 'string' },
        'hmac-secret-file': { type: 'string' },
        sub: { type: 'string' },
        label: { type: 'string', default: 'node' },
        publish: { type: 'string', default: '0' },
        expect: { type: 'string', default: '0' },
        members: { type: 'string', default: '1' },
        timeout: { type: 'string', default: '20' },
    },
});

function fail(why) {
    process.stderr.write(`node_client: ${why}\n`);
    process.exit(2);
}

async function token() {
    if (opt.token) return opt.token;
    if (!opt['hmac-secret-file'] || !opt.sub) fail('need --token or --hmac-secret-file and --sub');
    const secret = readFileSync(opt['hmac-secret-file']);
    const key = secret.at(-1) === 0x0a ? secret.subarray(0, -1) : secret;
    return new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(opt.sub)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key);
}

const room = opt.room;
const nPublish = Number(opt.publish);
const nExpect = Number(opt.expect);
const nMembers = Number(opt.members);
setTimeout(() => fail(`timed out after ${opt.timeout}s`), Number(opt.timeout) * 1000).unref();

const ws = new WebSocket(`${opt.url}?room=${encodeURIComponent(room)}`, ['roomrelay.v1'], {
    headers: { Authorization: `Bearer ${await token()}` },
});
let published = false;
let messages = 0;
let acks = 0;

function send(obj) {
    ws.send(JSON.stringify(obj));
}

function publishAll() {
    published = true;
    for (let i = 0; i < nPublish; i++) {
        send({ type: 'publish', room, id: `${opt.label}-${i}`,
               data: { from: opt.label, i,
                       text: 'héllo ✓ 🎲'.repeat(i === nPublish - 1 ? 1000 : 1) } });
    }
}

ws.on('open', () => {
    console.log(JSON.stringify({ client: { protocol: ws.protocol, extensions: ws.extensions } }));
});
ws.on('message', (raw, isBinary) => {
    if (isBinary) fail('binary frame from the server');
    const m = JSON.parse(raw.toString('utf8'));
    console.log(JSON.stringify(m));
    if (m.type === 'welcome' || (m.type === 'member' && m.event === 'join')) {
        send({ type: 'presence', room });
    } else if (m.type === 'presence' && !published) {
        if (new Set(m.members.map((x) => x.sub)).size >= nMembers) publishAll();
    } else if (m.type === 'message') {
        messages++;
    } else if (m.type === 'ack') {
        acks++;
    } else if (m.type === 'error') {
        fail(`server error ${raw}`);
    }
    if (published && messages >= nExpect && acks >= nPublish) ws.close(1000);
});
ws.on('close', (code) => {
    if (!(published && messages >= nExpect && acks >= nPublish)) fail(`closed early: ${code}`);
    process.exit(0);
});
ws.on('error', (e) => fail(`websocket error: ${e.message}`));
