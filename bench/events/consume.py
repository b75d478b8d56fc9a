#!/usr/bin/env python3
"""One SSE consumer of bench/events: reads /api/v1/sessions/ID/events over plain HTTP/1.1
(chunked), checks ids are consecutive (no gap, no repeat), and measures emit -> receive
latency from each event's emitNs (the emitter's wall clock; same machine). Prints one JSON
line when the stream has been quiet for QUIET seconds after the first event, or at DEADLINE.

usage: consume.py HOST PORT SESSION TOKEN SKIP_NS QUIET DEADLINE
  SKIP_NS: events emitted before this wall-clock time (ns) are not counted in the latency
           (they were in the history when the consumer attached)."""
import json
import os
import socket
import sys
import time

host, port, session, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
skip_ns, quiet, deadline = int(sys.argv[5]), float(sys.argv[6]), time.time() + float(sys.argv[7])

sock = socket.create_connection((host, port))
sock.sendall((f"GET /api/v1/sessions/{session}/events HTTP/1.1\r\nHost: {host}\r\n"
              f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode())
sock.settimeout(0.5)
raw = b""
while b"\r\n\r\n" not in raw:
    raw += sock.recv(65536)
head, raw = raw.split(b"\r\n\r\n", 1)
if b" 200 " not in head.split(b"\r\n")[0]:
    print(json.dumps({"error": head.decode(errors="replace")}))
    sys.exit(1)

body = b""       # de-chunked bytes not yet split into lines
expected = None  # next id
received = gaps = repeats = 0
first_at = last_at = None
latencies = []
# LATENCY_DUMP=FILE: every measured event's emit time and latency (ns), to see when the tail happens.
dump = open(os.environ["LATENCY_DUMP"], "w") if os.environ.get("LATENCY_DUMP") else None
last_data = time.time()
pending_id = None

def feed(data):
    global body, expected, received, gaps, repeats, first_at, last_at, pending_id
    body += data
    lines = body.split(b"\n")
    body = lines.pop()
    now_ns = time.time_ns()
    for line in lines:
        if line.startswith(b"id: "):
            pending_id = int(line[4:])
        elif line.startswith(b"data: ") and pending_id is not None:
            seq = pending_id
            pending_id = None
            if expected is not None and seq != expected:
                if seq < expected:
                    repeats += 1
                else:
                    gaps += 1
            expected = seq + 1
            received += 1
            if first_at is None:
                first_at = now_ns
            last_at = now_ns
            at = line.find(b'"emitNs":"')
            if at >= 0:
                end = line.find(b'"', at + 10)
                emitted = int(line[at + 10:end])
                if emitted >= skip_ns:
                    latencies.append(now_ns - emitted)
                    if dump:
                        dump.write(f"{emitted} {now_ns - emitted}\n")

chunked = raw
while time.time() < deadline:
    # De-chunk what we have: SIZE\r\nDATA\r\n...
    while True:
        nl = chunked.find(b"\r\n")
        if nl < 0:
            break
        size = int(chunked[:nl].split(b";")[0] or b"0", 16)
        if len(chunked) < nl + 2 + size + 2:
            break
        feed(chunked[nl + 2:nl + 2 + size])
        chunked = chunked[nl + 2 + size + 2:]
        if size == 0:
            deadline = 0
            break
    try:
        data = sock.recv(1 << 20)
        if not data:
            break
        chunked += data
        last_data = time.time()
    except socket.timeout:
        if received and time.time() - last_data > quiet:
            break

latencies.sort()
def pct(p):
    return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] / 1e6, 2) if latencies else None
span = (last_at - first_at) / 1e9 if first_at and last_at and last_at > first_at else 0
print(json.dumps({"received": received, "lastId": (expected - 1) if expected else 0, "gaps": gaps, "repeats": repeats,
                  "measured": len(latencies), "p50Ms": pct(0.50), "p99Ms": pct(0.99), "maxMs": pct(1.0),
                  "eventsPerSecond": round(received / span) if span else None}))
