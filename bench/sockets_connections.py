#!/usr/bin/env python3
"""Holds N established TCP connections on loopback for bench/sockets.sh.

Usage: sockets_connections.py PAIRS READY_FILE [MAX_SECONDS]
Opens PAIRS client sockets toward listeners on 127.0.0.1 (from the source
addresses 127.0.0.2-127.0.0.9) and accepts each one, so 2*PAIRS established
sockets exist. The file limit is raised as far as allowed and the pairs are
spread over enough worker processes to stay under it. Writes READY_FILE when
all are open, and exits (with its workers) when stdin closes or after
MAX_SECONDS (default 600). Run it inside a network namespace made for it.
"""
import os, resource, select, signal, socket, sys, time

pairs = int(sys.argv[1])
ready_file = sys.argv[2]
max_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
start = time.monotonic()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = 2 * pairs + 64
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))  # needs CAP_SYS_RESOURCE
except (ValueError, OSError):
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
per_worker = max(1, (limit - 64) // 2)


def hold(count, ready_w):
    """In a worker: open `count` pairs, report, then sleep until killed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    sources = ["127.0.0.%d" % i for i in range(2, 10)]
    held, batch = [], 1000
    while len(held) < 2 * count:
        if time.monotonic() - start > 120:
            os.write(ready_w, b"timeout\n")
            os._exit(1)
        n = min(batch, count - len(held) // 2)
        clients = []
        for i in range(n):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.bind((sources[i % len(sources)], 0))
            c.connect(("127.0.0.1", port))  # loopback: completes at once while the backlog has room
            clients.append(c)
        for c in clients:
            conn, _ = listener.accept()
            held += [c, conn]
    os.write(ready_w, b"ok\n")
    while time.monotonic() - start < max_seconds:
        time.sleep(1)
    os._exit(0)


workers = []
ready_r, ready_w = os.pipe()
left = pairs
while left > 0:
    count = min(per_worker, left)
    left -= count
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        hold(count, ready_w)
    workers.append(pid)
os.close(ready_w)


def stop(*_):
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in workers:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
with os.fdopen(ready_r) as r:
    answers = [r.readline().strip() for _ in workers]
if answers != ["ok"] * len(workers):
    print("a worker could not open its connections: %s" % answers, file=sys.stderr)
    stop()
with open(ready_file, "w") as f:
    f.write("%d workers, %d sockets\n" % (len(workers), 2 * pairs))

# Hold everything until the caller closes stdin or the time is up.
while time.monotonic() - start < max_seconds:
    r, _, _ = select.select([sys.stdin], [], [], 1.0)
    if r and not sys.stdin.read(1):
        break
stop()
