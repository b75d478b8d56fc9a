#!/usr/bin/env python3
"""Self-check of aioquic_peer.py without `ah`: aioquic against itself and against ngtcp2's
own GnuTLS example programs (gtlsclient / gtlsserver from Debian's ngtcp2-client and
ngtcp2-server), all on 127.0.0.1, with throw-away certificates in a temp directory.

    selfcheck.py [--skip-ngtcp2] [--keep]

What it proves:
  * aioquic_peer client <-> aioquic_peer server: ALPN ah/1, certificates both ways, 1 MiB
    and multi-stream echoes; refusals for an untrusted server CA, an untrusted or expired
    client certificate, a wrong --server-id and an --allow-id that does not match.
  * ngtcp2+GnuTLS client -> aioquic server (our client-certificate patch): gtlsclient with
    a client certificate downloads a body over HTTP/3 and gets every byte; without a
    certificate, or with one from another CA, it is refused (certificate_required /
    bad_certificate). The ngtcp2 examples speak only HTTP/3 (ALPN h3), so for this part
    the same mutual-TLS server serves a fixed body over aioquic's HTTP/3 layer instead of
    echoing; the TLS/QUIC handshake code under test is the same.
  * aioquic client -> ngtcp2+GnuTLS server: aioquic verifies the SVID served by GnuTLS
    against the CA and presents its own certificate (gtlsserver --verify-client), then
    downloads a file over HTTP/3 and compares it.

Prints one line per check and a closing 'N passed, N failed'; exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import aioquic_peer as peer  # noqa: E402
from aioquic.asyncio.protocol import QuicConnectionProtocol  # noqa: E402
from aioquic.h3.connection import H3Connection  # noqa: E402
from aioquic.h3.events import DataReceived, HeadersReceived  # noqa: E402
from aioquic.quic import events  # noqa: E402
from aioquic.quic.configuration import QuicConfiguration  # noqa: E402
from aioquic.quic.connection import QuicConnection  # noqa: E402

PEER = os.path.join(HERE, "aioquic_peer.py")
MAKE_CERTS = os.path.join(HERE, "make_test_certs.py")
GTLSCLIENT = shutil.which("gtlsclient") or "/usr/bin/gtlsclient"
GTLSSERVER = shutil.which("gtlsserver") or "/usr/sbin/gtlsserver"

results: list[tuple[str, bool, str]] = []
aioquic_log: list[str] = []  # what the in-process aioquic endpoints logged


class _Collect(logging.Handler):
    def emit(self, record):
        aioquic_log.append(record.getMessage())


def check(name: str, ok: bool, detail: str = "") -> None:
    results.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}{(': ' + detail) if detail and not ok else ''}",
          flush=True)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A background process that announces itself with 'listening on HOST:PORT'."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.stderr_lines: list[str] = []
        self._line: list[str] = []
        ready = threading.Event()

        def read_stdout():
            for line in self.proc.stdout:
                if line.startswith("listening on ") and not self._line:
                    self._line.append(line.strip()[len("listening on "):])
                    ready.set()
            ready.set()

        def read_stderr():
            for line in self.proc.stderr:
                self.stderr_lines.append(line.rstrip("\n"))

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()
        if not ready.wait(20) or not self._line:
            self.stop()
            raise RuntimeError(f"server did not start: {argv}\n" + "\n".join(self.stderr_lines))
        self.address = self._line[0]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)


def run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def peer_client(address: str, certs: str, name: str = "dev", ca: str | None = None,
                extra: list[str] | None = None) -> tuple[int, dict, str]:
    argv = [sys.executable, PEER, "client", "--connect", address,
            "--cert", os.path.join(certs, f"{name}.pem"),
            "--key", os.path.join(certs, f"{name}-key.pem"),
            "--ca", ca or os.path.join(certs, "ca.pem"), "--timeout", "20"] + (extra or [])
    proc = run(argv)
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {}
    return proc.returncode, result, proc.stderr


# --------------------------------------------------------------------------------------


def aioquic_pairs(tmp: str) -> None:
    good, other = os.path.join(tmp, "good"), os.path.join(tmp, "other")
    server = Server([sys.executable, PEER, "server", "--listen", "127.0.0.1:0",
                     "--cert", f"{good}/serve.pem", "--key", f"{good}/serve-key.pem",
                     "--ca", f"{good}/ca.pem"])
    try:
        rc, res, err = peer_client(server.address, good, extra=[
            "--bytes", "1048576", "--server-id", "spiffe://example.org/ah/serve"])
        check("aioquic echo 1 MiB, ALPN ah/1, mutual TLS",
              rc == 0 and res.get("echoMatched") is True and res.get("alpn") == "ah/1"
              and res.get("serverIds") == ["spiffe://example.org/ah/serve"], f"rc={rc} {res} {err}")
        rc, res, err = peer_client(server.address, good, extra=["--bytes", "262144",
                                                                "--streams", "4"])
        check("aioquic echo 4 streams x 256 KiB", rc == 0 and res.get("echoMatched") is True,
              f"rc={rc} {res} {err}")
        rc, res, err = peer_client(server.address, good, extra=["--bytes", "0"])
        check("aioquic echo of an empty stream", rc == 0 and res.get("echoMatched") is True,
              f"rc={rc} {res} {err}")
        check("server logged the client's SPIFFE ID",
              "peer=spiffe://example.org/ah/agent/dev" in server.stderr, server.stderr)

        rc, res, err = peer_client(server.address, good, ca=f"{other}/ca.pem")
        check("client refuses a server from another CA",
              rc == 3 and "bad_certificate" in res.get("error", ""), f"rc={rc} {res}")
        rc, res, err = peer_client(server.address, good,
                                   extra=["--server-id", "spiffe://example.org/ah/elsewhere"])
        check("client refuses a server with another SPIFFE ID",
              rc == 3 and "access_denied" in res.get("error", ""), f"rc={rc} {res}")
        rc, res, err = peer_client(server.address, other, ca=f"{good}/ca.pem")
        check("server refuses a client certificate from another CA",
              rc == 3 and "bad_certificate" in res.get("error", ""), f"rc={rc} {res}")
        rc, res, err = peer_client(server.address, good, name="old")
        check("server refuses an expired client certificate",
              rc == 3 and "certificate_expired" in res.get("error", ""), f"rc={rc} {res}")
    finally:
        code = server.stop()
    check("server exits 0 on SIGTERM", code == 0, f"exit {code}\n{server.stderr}")

    server = Server([sys.executable, PEER, "server", "--listen", "127.0.0.1:0",
                     "--cert", f"{good}/serve.pem", "--key", f"{good}/serve-key.pem",
                     "--ca", f"{good}/ca.pem", "--allow-id", "spiffe://example.org/ah/agent/x"])
    try:
        rc, res, err = peer_client(server.address, good)
        check("server --allow-id refuses other identities",
              rc == 3 and "access_denied" in res.get("error", "")
              and "spiffe://example.org/ah/agent/dev" in server.stderr, f"rc={rc} {res}")
    finally:
        server.stop()
    server = Server([sys.executable, PEER, "server", "--listen", "127.0.0.1:0",
                     "--cert", f"{good}/serve.pem", "--key", f"{good}/serve-key.pem",
                     "--ca", f"{good}/ca.pem", "--allow-id", "spiffe://example.org/ah/agent/*"])
    try:
        rc, res, err = peer_client(server.address, good)
        check("server --allow-id prefix/* admits the agent", rc == 0, f"rc={rc} {res} {err}")
    finally:
        server.stop()

    proc = run([sys.executable, PEER, "server", "--listen", "nonsense", "--cert", "x",
                "--key", "x", "--ca", "x"])
    check("bad --listen exits 2 naming the value",
          proc.returncode == 2 and "nonsense" in proc.stderr, f"{proc.returncode} {proc.stderr}")


# --------------------------------------------------------------------------------------
# ngtcp2 (GnuTLS) examples; they speak HTTP/3 only.


class H3BodyServer(QuicConnectionProtocol):
    body = b""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._h3: H3Connection | None = None

    def quic_event_received(self, event):
        if isinstance(event, events.ProtocolNegotiated):
            self._h3 = H3Connection(self._quic)
        if self._h3 is None:
            return
        for h3_event in self._h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                self._h3.send_headers(h3_event.stream_id, [
                    (b":status", b"200"), (b"content-length", str(len(self.body)).encode())])
                self._h3.send_data(h3_event.stream_id, self.body, end_stream=True)
                self.transmit()


def run_h3_server_in_thread(certs: str, body: bytes):
    """The mutual-TLS aioquic server of aioquic_peer, serving HTTP/3 in a thread."""
    peer.PeerPolicy.require_client_certificate = True
    peer.install_mutual_tls()
    H3BodyServer.body = body
    args = argparse.Namespace(cert=f"{certs}/serve.pem", key=f"{certs}/serve-key.pem",
                              ca=f"{certs}/ca.pem", idle_timeout=30.0)
    configuration = peer.make_configuration(args, is_client=False, alpn=["h3"])
    state: dict = {}
    started = threading.Event()

    def main():
        async def serve_forever():
            from aioquic.asyncio import serve
            server = await serve("127.0.0.1", 0, configuration=configuration,
                                 create_protocol=H3BodyServer)
            state["port"] = server._transport.get_extra_info("sockname")[1]
            state["loop"] = asyncio.get_running_loop()
            state["stop"] = asyncio.Event()
            started.set()
            await state["stop"].wait()
            server.close()
        asyncio.run(serve_forever())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    started.wait(10)

    def stop():
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(5)
    return state["port"], stop


def gtlsclient_download(port: int, certs: str | None, name: str, dest: str) -> tuple[int, bytes, str]:
    os.makedirs(dest, exist_ok=True)
    argv = [GTLSCLIENT, "--quiet", "--no-quic-dump", "--no-http-dump", "--download", dest,
            "--exit-on-all-streams-close", "--timeout", "5s", "--handshake-timeout", "5s"]
    if certs:
        argv += ["--cert", f"{certs}/{name}.pem", "--key", f"{certs}/{name}-key.pem"]
    argv += ["127.0.0.1", str(port), f"https://127.0.0.1:{port}/file"]
    proc = run(argv, timeout=30)
    path = os.path.join(dest, "file")
    data = open(path, "rb").read() if os.path.exists(path) else b""
    return proc.returncode, data, proc.stderr


async def aioquic_h3_get(port: int, certs: str, path: str) -> tuple[bytes, list[str]]:
    peer.PeerPolicy.expected_server_id = "spiffe://example.org/ah/serve"
    peer.install_mutual_tls()
    args = argparse.Namespace(cert=f"{certs}/dev.pem", key=f"{certs}/dev-key.pem",
                              ca=f"{certs}/ca.pem", idle_timeout=10.0)
    configuration = peer.make_configuration(args, is_client=True, alpn=["h3"])
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    connection = QuicConnection(configuration=configuration)
    body = bytearray()
    done = loop.create_future()

    class Client(QuicConnectionProtocol):
        h3: H3Connection | None = None

        def quic_event_received(self, event):
            if isinstance(event, events.ConnectionTerminated) and not done.done():
                done.set_exception(ConnectionError(peer.describe_termination(event)))
            if isinstance(event, events.ProtocolNegotiated):
                # before any 1-RTT data, so the H3 layer sees the server's SETTINGS
                self.h3 = H3Connection(connection)
            if self.h3 is None:
                return
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, DataReceived):
                    body.extend(h3_event.data)
                if getattr(h3_event, "stream_ended", False) and not done.done():
                    done.set_result(None)

    transport, protocol = await loop.create_datagram_endpoint(lambda: Client(connection),
                                                              sock=sock)
    try:
        protocol.connect(("127.0.0.1", port), transmit=True)
        await asyncio.wait_for(protocol.wait_connected(), 10)
        ids = peer.spiffe_ids(connection.tls._peer_certificate)
        stream_id = connection.get_next_available_stream_id()
        protocol.h3.send_headers(stream_id, [
            (b":method", b"GET"), (b":scheme", b"https"),
            (b":authority", f"127.0.0.1:{port}".encode()), (b":path", path.encode())],
            end_stream=True)
        protocol.transmit()
        await asyncio.wait_for(done, 30)
        return bytes(body), ids
    finally:
        if done.done() and not done.cancelled():
            done.exception()  # retrieved: the caller already got the failure
        protocol.close()
        try:
            await asyncio.wait_for(protocol.wait_closed(), 2)
        except asyncio.TimeoutError:
            pass
        transport.close()


def ngtcp2_interop(tmp: str) -> None:
    good, other = os.path.join(tmp, "good"), os.path.join(tmp, "other")
    body = os.urandom(4 * 1024 * 1024 + 7)

    # gtlsclient -> aioquic (mutual TLS server with our client-certificate patch)
    port, stop = run_h3_server_in_thread(good, body)
    try:
        rc, data, err = gtlsclient_download(port, good, "dev", os.path.join(tmp, "dl1"))
        check("gtlsclient (ngtcp2+GnuTLS) with client cert -> aioquic server: full body",
              rc == 0 and data == body, f"rc={rc} got {len(data)} of {len(body)} bytes {err}")
        del aioquic_log[:]
        rc, data, err = gtlsclient_download(port, None, "dev", os.path.join(tmp, "dl2"))
        check("gtlsclient without client cert is refused (certificate_required)",
              data == b"" and any("sent no certificate" in m for m in aioquic_log),
              f"rc={rc} got {len(data)} bytes; aioquic log {aioquic_log}")
        del aioquic_log[:]
        rc, data, err = gtlsclient_download(port, other, "dev", os.path.join(tmp, "dl3"))
        check("gtlsclient with a foreign client cert is refused (bad_certificate)",
              data == b"" and any("local issuer" in m for m in aioquic_log),
              f"rc={rc} got {len(data)} bytes; aioquic log {aioquic_log}")
    finally:
        stop()

    # aioquic -> gtlsserver
    htdocs = os.path.join(tmp, "htdocs")
    os.makedirs(htdocs, exist_ok=True)
    with open(os.path.join(htdocs, "file"), "wb") as fp:
        fp.write(body)
    port = free_udp_port()
    server = subprocess.Popen([GTLSSERVER, "--quiet", "-d", htdocs, "--verify-client",
                               "--timeout", "10s", "127.0.0.1", str(port),
                               f"{good}/serve-key.pem", f"{good}/serve.pem"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        try:
            data, ids = asyncio.run(aioquic_h3_get(port, good, "/file"))
            check("aioquic client with client cert -> gtlsserver: verified SVID, full body",
                  data == body and ids == ["spiffe://example.org/ah/serve"],
                  f"got {len(data)} of {len(body)} bytes, server ids {ids}")
        except Exception as exc:  # noqa: BLE001
            check("aioquic client with client cert -> gtlsserver: verified SVID, full body",
                  False, repr(exc))
        try:
            asyncio.run(aioquic_h3_get(port, other, "/file"))
            check("aioquic client refuses gtlsserver's cert under another CA", False,
                  "connected")
        except Exception as exc:  # noqa: BLE001
            check("aioquic client refuses gtlsserver's cert under another CA",
                  isinstance(exc, ConnectionError), repr(exc))
    finally:
        server.terminate()
        server.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-ngtcp2", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args()
    logging.getLogger("quic").addHandler(_Collect())
    logging.getLogger("quic").propagate = False
    tmp = tempfile.mkdtemp(prefix="ah-interop-selfcheck-")
    try:
        for name, extra in (("good", ["--id", "spiffe://example.org/ah/serve",
                                      "--id", "spiffe://example.org/ah/agent/dev",
                                      "--id", "spiffe://example.org/ah/agent/old",
                                      "--expired", "spiffe://example.org/ah/agent/old"]),
                            ("other", [])):
            subprocess.run([sys.executable, MAKE_CERTS, "--out", os.path.join(tmp, name)] + extra,
                           check=True)
        aioquic_pairs(tmp)
        if args.skip_ngtcp2:
            print("(ngtcp2 examples skipped)")
        elif not (os.path.exists(GTLSCLIENT) and os.path.exists(GTLSSERVER)):
            check("ngtcp2 examples installed (apt-get install ngtcp2-client ngtcp2-server)", False)
        else:
            ngtcp2_interop(tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
