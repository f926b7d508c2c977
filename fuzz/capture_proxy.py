"""Records what Kafka clients send, for fuzz seeds: listens on 127.0.0.1:LISTEN_PORT, forwards to
127.0.0.1:UP_PORT, and writes each client->server request frame (length prefix included) to
OUT/<connection>-<n>.bin.

Usage: python3 capture_proxy.py LISTEN_PORT UP_PORT OUT, with strata serve --advertise
127.0.0.1:LISTEN_PORT so that clients come back through the proxy after bootstrap."""
import asyncio, os, struct, sys, itertools

LISTEN_PORT, UP_PORT, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(OUT, exist_ok=True)
conn_ids = itertools.count()

async def pipe_frames(reader, writer, cid):
    buf = b""; n = 0
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data); await writer.drain()
        buf += data
        while len(buf) >= 4:
            size = struct.unpack(">i", buf[:4])[0]
            if len(buf) < 4 + size:
                break
            frame, buf = buf[:4 + size], buf[4 + size:]
            with open(f"{OUT}/{cid:03d}-{n:04d}.bin", "wb") as f:
                f.write(frame)
            n += 1
    writer.close()

async def pipe(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data); await writer.drain()
    writer.close()

async def handle(cr, cw):
    cid = next(conn_ids)
    ur, uw = await asyncio.open_connection("127.0.0.1", UP_PORT)
    await asyncio.gather(pipe_frames(cr, uw, cid), pipe(ur, cw), return_exceptions=True)

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN_PORT)
    async with server:
        await server.serve_forever()

asyncio.run(main())
