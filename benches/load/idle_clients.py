#!/usr/bin/env python3
"""Opens many keep-alive client connections to a proxy on loopback and keeps them idle.

Each connection sends one GET, reads the whole response (which must be 200 with a
Content-Length body), and then stays open without sending anything. Connections are opened
in batches (250 by default) smaller than the proxies' listen backlog (1,024 in
compare.sh). When every connection is idle the script prints `idle N` on stdout and keeps
them open until --hold seconds have passed or it is terminated. It exits with status 1 if
a connection fails.

Used by benches/compare.sh to measure the proxy's resident memory per idle connection.
Standard library only.
"""

import argparse
import selectors
import socket
import sys
import time

# Largest response accepted before the connection counts as failed, in bytes.
MAX_RESPONSE_BYTES = 64 * 1024


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="proxy address (loopback only)")
    parser.add_argument("--port", type=int, required=True, help="proxy port")
    parser.add_argument("--path", default="/plain", help="request path")
    parser.add_argument("--count", type=int, default=10000, help="connections to open")
    parser.add_argument("--batch", type=int, default=250, help="connections opened at once")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds to keep the idle connections open")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds allowed for one batch to connect and get its responses")
    return parser.parse_args()


def response_complete(data):
    """Returns True when `data` contains a whole 200 response with a Content-Length body,
    False when more bytes are needed; raises ValueError for anything else."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_RESPONSE_BYTES:
            raise ValueError("response head too large")
        return False
    head = data[:end].decode("latin-1").split("\r\n")
    status = head[0].split(" ")
    if len(status) < 2 or status[1] != "200":
        raise ValueError("unexpected status line %r" % head[0])
    length = None
    for line in head[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("response without Content-Length")
    if len(data) > end + 4 + length:
        raise ValueError("more bytes than the Content-Length")
    return len(data) == end + 4 + length


def open_batch(args, size, request):
    """Connects `size` sockets, sends the request on each and reads every response.
    Returns the sockets, now idle."""
    selector = selectors.DefaultSelector()
    pending = {}
    for _ in range(size):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((args.host, args.port))
        pending[sock] = [b"", False]
        selector.register(sock, selectors.EVENT_WRITE)
    done = []
    deadline = time.monotonic() + args.timeout
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("%d connections without a response after %.0f s"
                               % (len(pending), args.timeout))
        for key, _ in selector.select(remaining):
            sock = key.fileobj
            state = pending[sock]
            if not state[1]:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise ConnectionError("connect failed: errno %d" % error)
                sock.sendall(request)
                state[1] = True
                selector.modify(sock, selectors.EVENT_READ)
                continue
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the response ended")
            state[0] += chunk
            if response_complete(state[0]):
                selector.unregister(sock)
                del pending[sock]
                done.append(sock)
    selector.close()
    return done


def main():
    args = parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("refusing a non-loopback host: %s" % args.host)
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (args.path, args.host, args.port)).encode()
    idle = []
    try:
        while len(idle) < args.count:
            size = min(args.batch, args.count - len(idle))
            idle.extend(open_batch(args, size, request))
    except (OSError, ValueError, TimeoutError) as error:
        print("failed after %d connections: %s" % (len(idle), error), file=sys.stderr)
        sys.exit(1)
    print("idle %d" % len(idle), flush=True)
    time.sleep(args.hold)
    for sock in idle:
        sock.close()


if __name__ == "__main__":
    main()
