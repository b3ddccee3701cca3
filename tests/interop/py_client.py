"""One interop client on python3-websockets (tests/integration/test_interop.py
runs it with /usr/bin/python3). Not a general client: it does the script of
tests/interop/node_client.mjs once and exits, with the same options and output,
but sends its token as the access_token query argument."""
import argparse
import asyncio
import json
import sys
import urllib.parse

import websockets


def fail(why):
    print(f"py_client: {why}", file=sys.stderr, flush=True)
    sys.exit(2)


def emit(obj):
    print(json.dumps(obj, ensure_ascii=False), flush=True)


async def run(opt):
    query = urllib.parse.urlencode({"room": opt.room, "access_token": opt.token})
    async with websockets.connect(f"{opt.url}?{query}", subprotocols=["roomrelay.v1"]) as ws:
        emit({"client": {"protocol": ws.subprotocol,
                         "extensions": ", ".join(e.name for e in ws.extensions)}})
        published = False
        messages = acks = 0
        while not (published and messages >= opt.expect and acks >= opt.publish):
            raw = await ws.recv()
            if not isinstance(raw, str):
                fail("binary frame from the server")
            m = json.loads(raw)
            emit(m)
            kind = m.get("type")
            if kind == "welcome" or (kind == "member" and m.get("event") == "join"):
                await ws.send(json.dumps({"type": "presence", "room": opt.room}))
            elif kind == "presence" and not published:
                if len({x["sub"] for x in m["members"]}) >= opt.members:
                    published = True
                    for i in range(opt.publish):
                        text = "héllo ✓ 🎲" * (1000 if i == opt.publish - 1 else 1)
                        await ws.send(json.dumps({
                            "type": "publish", "room": opt.room, "id": f"{opt.label}-{i}",
                            "data": {"from": opt.label, "i": i, "text": text}},
                            ensure_ascii=False))
            elif kind == "message":
                messages += 1
            elif kind == "ack":
                acks += 1
            elif kind == "error":
                fail(f"server error {raw}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--room", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--label", default="python")
    ap.add_argument("--publish", type=int, default=0)
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20)
    opt = ap.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(opt), opt.timeout))
    except asyncio.TimeoutError:
        fail(f"timed out after {opt.timeout}s")
    except websockets.exceptions.WebSocketException as e:
        fail(f"websocket error: {e!r}")


if __name__ == "__main__":
    main()
