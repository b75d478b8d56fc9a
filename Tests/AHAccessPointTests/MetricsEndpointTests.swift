import AHSPIFFE
import AHTestSupport
import Foundation
import NIOCore
import NIOPosix
import XCTest

/// `GET /metrics` of a real `ah serve`: parsed by an independent Prometheus parser (Python's
/// prometheus_client), its counters move with real work (an enrollment, a refused enrollment,
/// a QUIC client of another CA, a tunnel through a real `ah agent enroll` to an echo server, a
/// refused CONNECT), and it is
/// served with a token on the main listener and without one on `--metrics-listen` only.
final class MetricsEndpointTests: XCTestCase {
    var directory: TemporaryDirectory!
    var echo: Channel!
    var serve: ServeProcess?
    var agent: ChildProcess?

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-metrics")
        echo = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(MetricsEcho()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    override func tearDown() async throws {
        if let agent { _ = await agent.terminate(grace: 2) }
        await serve?.stop()
        try? await echo?.close()
    }

    /// One parsed exposition: sample values by name and labels, family types by name.
    struct Exposition {
        let types: [String: String]
        let samples: [(name: String, labels: [String: String], value: Double)]

        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
    }

    private func parse(_ body: String) async throws -> Exposition {
        if let problem = await Python.importProblem("prometheus_client.parser") {
            try Requirement.check(false, "\(problem) (.ci/run installs prometheus_client)")
        }
        let result = try await ProcessRunner.run(try Executables.python3(),
                                                 [BuiltProducts.interopScript("metrics_parse.py").path],
                                                 stdin: Data(body.utf8), timeout: 30)
        XCTAssertEqual(result.exit, .exited(0), "prometheus_client refused the exposition\n\(result.transcript)\n\(body)")
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
        let types = object["families"] as? [String: String] ?? [:]
        let samples = (object["samples"] as? [[String: Any]] ?? []).map {
            (name: $0["name"] as? String ?? "", labels: $0["labels"] as? [String: String] ?? [:],
             value: ($0["value"] as? NSNumber)?.doubleValue ?? .nan)
        }
        return Exposition(types: types, samples: samples)
    }

    /// A GET on `port` (with an optional bearer token): status, content type and body.
    private func get(_ path: String, port: Int, token: String? = nil) throws -> (status: Int, contentType: String, body: String) {
        let socket = try RawSocket(port: port)
        let auth = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        try socket.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\(auth)Connection: close\r\n\r\n")
        let (text, closed) = socket.readUntilClose(timeout: 10)
        XCTAssertTrue(closed, "the response to GET \(path) did not end")
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = head.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? -1
        let contentType = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-type:") }
            .map { String($0.dropFirst("content-type:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
        return (status, contentType, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    private func userToken(_ role: String) async throws -> String {
        let result = try await ah(["user", "token", "--data-dir", serve!.dataDir, "--sub", "metrics-\(role)", "--role", role])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        return result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func testCountersMoveWithEnrollmentsAndTunnelsAndParseAsPrometheusText() async throws {
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path, extra: ["--metrics-listen", "127.0.0.1:0"])
        self.serve = serve
        let line = try await serve.process.waitForLine(withPrefix: "metrics listening on ", timeout: 10)
        let metricsPort = try XCTUnwrap(Int(line.split(separator: ":").last ?? ""), line)

        // Before any work: everything at zero, and the metrics listener needs no token.
        let first = try get("/metrics", port: metricsPort)
        XCTAssertEqual(first.status, 200, first.body)
        XCTAssertTrue(first.contentType.hasPrefix("text/plain; version=0.0.4"), first.contentType)
        let before = try await parse(first.body)
        XCTAssertEqual(before.value("ah_enrollments_total", ["result": "ok"]), 0)
        XCTAssertEqual(before.value("ah_tunnels_total"), 0)
        XCTAssertEqual(before.value("ah_executors", ["state": "connected"]), 0)
        XCTAssertEqual(before.value("ah_events_ingested_total"), 0, "registered for the events ingestion")
        XCTAssertEqual(before.value("ah_sse_consumers"), 0, "registered for SSE")
        // The metrics listener serves nothing else.
        XCTAssertEqual(try get("/api/v1/executors", port: metricsPort).status, 404)

        // A refused enrollment (an unknown join token), then a good one with an agent that
        // stays connected; its "sshd" is the echo server.
        let refused = try await ah(["agent", "enroll", "--remote-server", serve.remote, "--state-dir", directory.file("bad").path,
                                    "--name", "bad", "--token", "ahjt.AAAAAAAAAA." + String(repeating: "A", count: 43),
                                    "--ca-pin", serve.pin], timeout: 30)
        XCTAssertNotEqual(refused.exit, .exited(0), refused.transcript)
        let hostKey = directory.file("host_key.pub").path
        // Any well-formed key: the echo server is not an sshd, nothing verifies it here.
        try "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFr9dfNpTEfbb6L4P6Rm3EYtGS4WNRD4Ye9oJ0XqaJgP test\n"
            .write(toFile: hostKey, atomically: true, encoding: .utf8)
        agent = try await startAgent([
            "--remote-server", serve.remote, "--state-dir", directory.file("agent").path, "--name", "node",
            "--token", try await tokenCreate(serve), "--ca-pin", serve.pin,
            "--ssh-dst", "127.0.0.1:\(echo.localAddress?.port ?? 0)", "--ssh-host-key", hostKey])

        // A QUIC client whose certificate comes from another CA: its handshake fails.
        let stranger = try TestCertificates.authority(in: directory.file("stranger"))
        let files = try stranger.valid(try SPIFFEID(parsing: "spiffe://example.org/ah/agent/stranger"), name: "stranger")
        let foreign = try await ah(["debug", "quic-echo", "--connect", "127.0.0.1:\(serve.quicPort)", "--cert", files.certPath,
                                    "--key", files.keyPath, "--ca", files.caPath, "--bytes", "16"], timeout: 30)
        XCTAssertNotEqual(foreign.exit, .exited(0), foreign.transcript)

        // A CONNECT without a token (407), then a tunnel that carries bytes both ways.
        let anonymous = try RawSocket(port: serve.httpPort)
        try anonymous.send("CONNECT node:22 HTTP/1.1\r\nHost: node:22\r\n\r\n")
        XCTAssertTrue(anonymous.read(until: "407", timeout: 10).found)
        let tunnel = try RawSocket(port: serve.httpPort)
        try tunnel.send("CONNECT node:22 HTTP/1.1\r\nHost: node:22\r\nProxy-Authorization: Bearer \(try await userToken("operator"))\r\n\r\n")
        let (head, found) = tunnel.read(until: "\r\n\r\n", timeout: 20)
        XCTAssertTrue(found && head.hasPrefix("HTTP/1.1 200"), head)
        try tunnel.send("ping\n")
        XCTAssertTrue(tunnel.read(until: "ping\n", timeout: 10).found, "the tunnel should echo")
        tunnel.close()

        // The access point ends the tunnel (and counts its bytes) and reports the failed handshake
        // (when the connection is released, after QUIC's closing period) on its own time, with no
        // event to await from outside: poll the exposition until both have happened.
        func settled(_ exposition: Exposition) -> Bool {
            let failures = exposition.samples.filter { $0.name == "ah_quic_handshake_failures_total" }
            return exposition.value("ah_tunnels_open") == 0 && failures.reduce(0) { $0 + $1.value } >= 1
        }
        var after = try await parse(try get("/metrics", port: metricsPort).body)
        let deadline = Date().addingTimeInterval(20)
        while !settled(after), Date() < deadline {
            try await Task.sleep(nanoseconds: 100_000_000)
            after = try await parse(try get("/metrics", port: metricsPort).body)
        }
        XCTAssertEqual(after.value("ah_enrollments_total", ["result": "ok"]), 1)
        XCTAssertEqual(after.value("ah_enrollments_total", ["result": "refused"]), 1)
        XCTAssertEqual(after.value("ah_executors", ["state": "connected"]), 1)
        XCTAssertEqual(after.value("ah_quic_connections"), 1, "the agent's one connection")
        XCTAssertGreaterThanOrEqual(after.value("ah_quic_handshakes_total") ?? 0, 1)
        let failures = after.samples.filter { $0.name == "ah_quic_handshake_failures_total" }
        XCTAssertGreaterThanOrEqual(failures.reduce(0) { $0 + $1.value }, 1, "the foreign client's handshake: \(failures)")
        let reasons: Set = ["credentials", "transport", "handshake_failed", "peer_refused", "closed_by_peer", "closed_locally",
                            "idle_timeout", "handshake_timeout", "connection_closed", "stream_limit", "invalid_argument"]
        for failure in failures { XCTAssertTrue(reasons.contains(failure.labels["reason"] ?? ""), "\(failure.labels)") }
        XCTAssertEqual(after.value("ah_tunnels_total"), 1)
        XCTAssertEqual(after.value("ah_tunnels_open"), 0)
        XCTAssertEqual(after.value("ah_tunnels_refused_total", ["status": "407"]), 1)
        XCTAssertEqual(after.value("ah_tunnel_bytes_total", ["direction": "up"]), 5, "\"ping\\n\" up")
        XCTAssertEqual(after.value("ah_tunnel_bytes_total", ["direction": "down"]), 5, "\"ping\\n\" echoed down")
        // A response is counted once written, so an exposition shows the scrapes before it.
        XCTAssertGreaterThanOrEqual(after.value("ah_http_requests_total", ["route": "/metrics", "status": "200"]) ?? 0, 1)
        XCTAssertEqual(after.value("ah_http_requests_total", ["route": "unmatched", "status": "404"]), 1)
        XCTAssertEqual(after.types["ah_tunnels"], "counter")
        XCTAssertEqual(after.types["ah_executors"], "gauge")

        // On the main listener /metrics needs a token (any role from viewer up).
        XCTAssertEqual(try get("/metrics", port: serve.httpPort).status, 401)
        let withToken = try get("/metrics", port: serve.httpPort, token: try await userToken("viewer"))
        XCTAssertEqual(withToken.status, 200)
        let main = try await parse(withToken.body)
        XCTAssertEqual(main.value("ah_http_requests_total", ["route": "/metrics", "status": "401"]), 1)
    }
}

/// Echoes every byte: the executor's "sshd" here.
private final class MetricsEcho: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}
