#!/usr/bin/env python3
"""An independent QUIC peer (Python aioquic) for ah's interop tests.

    aioquic_peer.py client --connect HOST:PORT --cert PEM --key PEM --ca PEM
                           [--bytes N] [--streams N] [--server-id ID] [--timeout S]
    aioquic_peer.py server --listen HOST:PORT --cert PEM --key PEM --ca PEM
                           [--allow-id ID|spiffe://TD/prefix/*]

Both sides speak ALPN ``ah/1`` over TLS 1.3 with certificates both ways and verify the
peer's chain against ``--ca``.

client: opens ``--streams`` bidirectional streams (default 1), sends ``--bytes`` random
        bytes on each followed by FIN, reads until the peer's FIN and compares. Prints one
        JSON object on stdout; exits 0 only if every echo was byte-identical.
        Exit codes: 0 echoed, 1 mismatch or stream failure, 2 bad usage,
        3 could not connect / handshake refused / timed out.
server: prints ``listening on HOST:PORT`` on stdout once bound (port 0 picks a free port
        and the real one is printed), echoes every bidirectional stream and finishes its
        side when the peer finishes. Logs (one line per event) go to stderr. Exits 0 on
        SIGTERM or SIGINT.

Server name / hostname check (client side): an X.509-SVID carries only a SPIFFE URI SAN
and no DNS name, so a hostname check can never pass. The client leaves aioquic's
``server_name`` unset: aioquic then sends no SNI and skips only the hostname comparison,
while ``verify_mode = CERT_REQUIRED`` keeps the full chain verification against ``--ca``
(validity dates + OpenSSL X509 store). ``--server-id`` additionally pins the server's
SPIFFE ID.

Client certificates on the server side (aioquic 1.7): aioquic has no public option for
it. ``tls.Context`` has a private ``_request_client_certificate`` flag ("for test purposes
only") that makes the server send a CertificateRequest, and the server then checks only
the CertificateVerify *signature*: it never verifies the client's chain and it accepts an
empty Certificate message (no client certificate at all). This script therefore installs a
small subclass of ``aioquic.tls.Context`` (see ``_MutualTLSContext``) that
  * sets ``_request_client_certificate`` on the server,
  * fails the handshake with ``certificate_required`` (TLS alert 116) if the client sends
    no certificate,
  * verifies the client's chain against ``--ca`` with aioquic's own
    ``tls.verify_certificate`` (no hostname) and fails with ``bad_certificate`` (42),
  * optionally checks the client's SPIFFE ID against ``--allow-id`` (``access_denied``, 49).
This relies on aioquic internals (the private flag and the ``_server_handle_*`` methods);
it is checked at start-up and the script refuses to run (exit 2) if they are missing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import signal
import socket
import ssl
import sys
import time

try:
    from aioquic import tls
    from aioquic.asyncio import serve
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.quic import events
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from cryptography import x509
except ImportError as exc:  # pragma: no cover - reported to the caller
    print(f"aioquic_peer: cannot import aioquic ({exc}); pip install aioquic", file=sys.stderr)
    sys.exit(2)

ALPN = "ah/1"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def log(message: str) -> None:
    print(f"aioquic_peer: {message}", file=sys.stderr, flush=True)


class UsageError(Exception):
    pass


# --------------------------------------------------------------------------------------
# Addresses and identities


def parse_host_port(value: str) -> tuple[str, int]:
    """HOST:PORT, [V6]:PORT. Raises UsageError naming the value."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise UsageError(f"invalid address {value!r}: expected HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"invalid address {value!r}: put IPv6 hosts in brackets")
    port = int(port_text)
    if port > 65535:
        raise UsageError(f"invalid address {value!r}: port out of range")
    return host, port


def format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def spiffe_ids(certificate: x509.Certificate | None) -> list[str]:
    if certificate is None:
        return []
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [uri for uri in san.value.get_values_for_type(x509.UniformResourceIdentifier)
            if uri.startswith("spiffe://")]


def id_allowed(spiffe_id: str, patterns: list[str]) -> bool:
    """Exact IDs, or ``spiffe://TD/prefix/*`` matching anything below that path."""
    for pattern in patterns:
        if pattern.endswith("/*"):
            if spiffe_id.startswith(pattern[:-1]) and len(spiffe_id) > len(pattern) - 1:
                return True
        elif spiffe_id == pattern:
            return True
    return False


# --------------------------------------------------------------------------------------
# Mutual TLS on top of aioquic (see the module docstring)


class AlertCertificateRequired(tls.Alert):
    description = tls.AlertDescription.certificate_required


class AlertAccessDenied(tls.Alert):
    description = tls.AlertDescription.access_denied


class PeerPolicy:
    """Process-wide policy read by _MutualTLSContext (one role per process)."""

    require_client_certificate = False
    allowed_client_ids: list[str] = []
    expected_server_id: str | None = None


class _MutualTLSContext(tls.Context):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self._is_client and PeerPolicy.require_client_certificate:
            self._request_client_certificate = True

    # server: the client's Certificate message
    def _server_handle_certificate(self, input_buf):
        super()._server_handle_certificate(input_buf)
        if PeerPolicy.require_client_certificate and self._peer_certificate is None:
            raise AlertCertificateRequired("the client sent no certificate")

    # server: the client's CertificateVerify (signature checked by aioquic)
    def _server_handle_certificate_verify(self, input_buf):
        super()._server_handle_certificate_verify(input_buf)
        if not PeerPolicy.require_client_certificate:
            return
        tls.verify_certificate(
            certificate=self._peer_certificate,
            chain=self._peer_certificate_chain,
            server_name=None,
            cadata=self._cadata,
            cafile=self._cafile,
            capath=self._capath,
        )
        ids = spiffe_ids(self._peer_certificate)
        if PeerPolicy.allowed_client_ids and not any(
            id_allowed(i, PeerPolicy.allowed_client_ids) for i in ids
        ):
            log(f"refused client {ids or 'without SPIFFE ID'}: not in --allow-id")
            raise AlertAccessDenied(f"client identity {ids} not allowed")

    # client: the server's CertificateVerify (aioquic verifies the chain when
    # verify_mode != CERT_NONE; here we add the SPIFFE ID pin)
    def _client_handle_certificate_verify(self, input_buf):
        super()._client_handle_certificate_verify(input_buf)
        expected = PeerPolicy.expected_server_id
        if expected is not None:
            ids = spiffe_ids(self._peer_certificate)
            if not any(id_allowed(i, [expected]) for i in ids):
                raise AlertAccessDenied(f"server identity {ids} is not {expected}")


def install_mutual_tls() -> None:
    needed = ("_request_client_certificate", "_server_handle_certificate",
              "_server_handle_certificate_verify", "_client_handle_certificate_verify",
              "_peer_certificate", "_peer_certificate_chain", "_cafile")
    probe = tls.Context(is_client=False)
    missing = [n for n in needed if not hasattr(probe, n)]
    if missing or not hasattr(tls, "verify_certificate"):
        raise UsageError(
            "this aioquic version lacks the internals used for client-certificate "
            f"verification ({', '.join(missing) or 'verify_certificate'}); tested with 1.7"
        )
    # aioquic.quic.connection builds its TLS context as `tls.Context(...)` at handshake
    # time, so replacing the module attribute is enough.
    tls.Context = _MutualTLSContext


def make_configuration(args, is_client: bool, alpn: list[str]) -> QuicConfiguration:
    configuration = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=alpn,
        verify_mode=ssl.CERT_REQUIRED,
        idle_timeout=args.idle_timeout,
        max_data=16 * 1024 * 1024,
        max_stream_data=8 * 1024 * 1024,
    )
    # server_name stays None on purpose: see the module docstring.
    for path in (args.cert, args.key, args.ca):
        if not os.path.isfile(path):
            raise UsageError(f"no such file {path!r}")
    try:
        configuration.load_cert_chain(args.cert, args.key)
        configuration.load_verify_locations(cafile=args.ca)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot load {args.cert!r} / {args.key!r}: {exc}") from exc
    return configuration


def describe_termination(event: events.ConnectionTerminated) -> str:
    code = event.error_code
    text = f"error_code=0x{code:x}"
    if 0x100 <= code <= 0x1FF:
        try:
            text += f" (TLS alert {tls.AlertDescription(code - 0x100).name})"
        except ValueError:
            text += f" (TLS alert {code - 0x100})"
    if event.reason_phrase:
        text += f" reason={event.reason_phrase!r}"
    return text


# --------------------------------------------------------------------------------------
# Server


class EchoServerProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._counts: dict[int, int] = {}
        self._peer = "?"

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            ids = spiffe_ids(self._quic.tls._peer_certificate)
            self._peer = ids[0] if ids else "(no SPIFFE ID)"
            log(f"connection established alpn={event.alpn_protocol} peer={self._peer}")
        elif isinstance(event, events.StreamDataReceived):
            stream_id = event.stream_id
            if stream_id & 0x2:  # unidirectional: nothing to echo on
                return
            self._counts[stream_id] = self._counts.get(stream_id, 0) + len(event.data)
            self._quic.send_stream_data(stream_id, event.data, end_stream=event.end_stream)
            if event.end_stream:
                log(f"stream {stream_id} echoed {self._counts.pop(stream_id)} bytes, finished")
            self.transmit()
        elif isinstance(event, events.StreamReset):
            log(f"stream {event.stream_id} reset by peer (code {event.error_code})")
            self._counts.pop(event.stream_id, None)
        elif isinstance(event, events.ConnectionTerminated):
            log(f"connection closed peer={self._peer} {describe_termination(event)}")


async def run_server(args) -> int:
    host, port = parse_host_port(args.listen)
    PeerPolicy.require_client_certificate = True
    PeerPolicy.allowed_client_ids = list(args.allow_id or [])
    install_mutual_tls()
    configuration = make_configuration(args, is_client=False, alpn=args.alpn)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    try:
        server = await serve(host, port, configuration=configuration,
                             create_protocol=EchoServerProtocol)
    except OSError as exc:
        log(f"cannot listen on {args.listen!r}: {exc}")
        return EXIT_FAILED
    bound = server._transport.get_extra_info("sockname")
    print(f"listening on {format_host_port(bound[0], bound[1])}", flush=True)
    await stop.wait()
    log("stopping")
    server.close()
    return EXIT_OK


# --------------------------------------------------------------------------------------
# Client


class EchoClientProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._buffers: dict[int, bytearray] = {}
        self._waiters: dict[int, asyncio.Future] = {}
        self.termination: str | None = None
        self.refused_by_tls = False

    def echo(self, payload: bytes) -> asyncio.Future:
        stream_id = self._quic.get_next_available_stream_id()
        self._buffers[stream_id] = bytearray()
        self._waiters[stream_id] = self._loop.create_future()
        self._quic.send_stream_data(stream_id, payload, end_stream=True)
        self.transmit()
        return self._waiters[stream_id]

    def _fail_all(self, reason: str) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(reason))

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            buffer = self._buffers.get(event.stream_id)
            if buffer is None:
                return
            buffer += event.data
            if event.end_stream:
                waiter = self._waiters[event.stream_id]
                if not waiter.done():
                    waiter.set_result(bytes(buffer))
        elif isinstance(event, events.StreamReset):
            waiter = self._waiters.get(event.stream_id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(ConnectionError(
                    f"stream {event.stream_id} reset by server (code {event.error_code})"))
        elif isinstance(event, events.ConnectionTerminated):
            self.termination = describe_termination(event)
            self.refused_by_tls = 0x100 <= event.error_code <= 0x1FF
            self._fail_all(f"connection closed: {self.termination}")


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


async def run_client(args) -> int:
    host, port = parse_host_port(args.connect)
    if args.bytes < 0 or args.streams < 1:
        raise UsageError("--bytes must be >= 0 and --streams >= 1")
    PeerPolicy.expected_server_id = args.server_id
    install_mutual_tls()
    configuration = make_configuration(args, is_client=True, alpn=args.alpn)
    result: dict = {"ok": False, "connect": args.connect, "streams": args.streams,
                    "bytesPerStream": args.bytes}

    def finish(code: int, **fields) -> int:
        result.update(fields)
        print(json.dumps(result), flush=True)
        return code

    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        return finish(EXIT_UNREACHABLE, error=f"cannot resolve {host!r}: {exc}")
    family, _, _, _, address = infos[0]
    # Bind explicitly (aioquic's connect() would bind a dual-stack socket on "::").
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if _is_loopback(address[0]):
        sock.bind(("127.0.0.1", 0) if family == socket.AF_INET else ("::1", 0, 0, 0))
    else:
        sock.bind(("0.0.0.0", 0) if family == socket.AF_INET else ("::", 0, 0, 0))

    connection = QuicConnection(configuration=configuration)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: EchoClientProtocol(connection), sock=sock)
    started = time.monotonic()
    try:
        try:
            protocol.connect(address, transmit=True)
            await asyncio.wait_for(protocol.wait_connected(), timeout=args.timeout)
        except (ConnectionError, asyncio.TimeoutError):
            why = protocol.termination or "no handshake before the timeout"
            return finish(EXIT_UNREACHABLE, error=f"handshake failed: {why}")
        tls_context = connection.tls
        result["alpn"] = tls_context.alpn_negotiated
        result["serverIds"] = spiffe_ids(tls_context._peer_certificate)
        if tls_context.alpn_negotiated not in args.alpn:
            return finish(EXIT_FAILED, error=f"negotiated ALPN {tls_context.alpn_negotiated!r}")

        payloads = [os.urandom(args.bytes) for _ in range(args.streams)]
        t0 = time.monotonic()
        waiters = [protocol.echo(p) for p in payloads]
        try:
            echoes = await asyncio.wait_for(asyncio.gather(*waiters),
                                            timeout=max(1.0, args.timeout - (t0 - started)))
        except asyncio.TimeoutError:
            return finish(EXIT_FAILED, error="timed out waiting for the echo")
        except ConnectionError as exc:
            # In TLS 1.3 the client finishes its handshake before the server has judged
            # the client certificate, so a refusal arrives as a TLS alert afterwards.
            code = EXIT_UNREACHABLE if protocol.refused_by_tls else EXIT_FAILED
            return finish(code, error=str(exc))
        seconds = time.monotonic() - t0
        mismatches = []
        for index, (sent, got) in enumerate(zip(payloads, echoes)):
            if sent != got:
                mismatches.append({
                    "stream": index, "sent": len(sent), "received": len(got),
                    "sentSHA256": hashlib.sha256(sent).hexdigest(),
                    "receivedSHA256": hashlib.sha256(got).hexdigest(),
                })
        total = args.bytes * args.streams
        fields = {
            "seconds": round(seconds, 6),
            "mibPerSecond": round(total / (1024 * 1024) / seconds, 3) if seconds > 0 else None,
            "sha256": [hashlib.sha256(p).hexdigest() for p in payloads],
        }
        if mismatches:
            return finish(EXIT_FAILED, error="echo differs", mismatches=mismatches, **fields)
        return finish(EXIT_OK, ok=True, echoMatched=True, **fields)
    finally:
        protocol.close()
        try:
            await asyncio.wait_for(protocol.wait_closed(), timeout=2.0)
        except asyncio.TimeoutError:
            pass
        transport.close()


# --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"aioquic_peer: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aioquic_peer.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True, parser_class=_Parser)

    def common(p):
        p.add_argument("--cert", required=True, help="own certificate (PEM)")
        p.add_argument("--key", required=True, help="own private key (PEM)")
        p.add_argument("--ca", required=True, help="trust anchor(s) for the peer (PEM)")
        p.add_argument("--idle-timeout", type=float, default=30.0, help="QUIC idle timeout (s)")
        # For self-checks against ngtcp2's HTTP/3 examples only; ah always uses ah/1.
        p.add_argument("--alpn", action="append", help=argparse.SUPPRESS)

    c = sub.add_parser("client", help="echo N bytes over one stream and compare")
    c.add_argument("--connect", required=True, metavar="HOST:PORT")
    c.add_argument("--bytes", type=int, default=65536)
    c.add_argument("--streams", type=int, default=1)
    c.add_argument("--server-id", help="require this SPIFFE ID (or prefix/*) in the server's SAN")
    c.add_argument("--timeout", type=float, default=30.0, help="overall deadline (s)")
    common(c)

    s = sub.add_parser("server", help="echo every bidirectional stream")
    s.add_argument("--listen", required=True, metavar="HOST:PORT")
    s.add_argument("--allow-id", action="append",
                   help="accept only these client SPIFFE IDs (exact or spiffe://TD/prefix/*)")
    common(s)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="aioquic_peer: aioquic %(levelname)s %(message)s")
    args.alpn = args.alpn or [ALPN]
    try:
        if args.mode == "client":
            return asyncio.run(run_client(args))
        return asyncio.run(run_server(args))
    except UsageError as exc:
        print(f"aioquic_peer: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
