// Interop with an independent QUIC stack: Python aioquic (Tests/Interop/aioquic_peer.py)
// against the real `ah` debug commands, both directions, ALPN ah/1, certificates both ways.
//
// Needs `python3 -m pip install aioquic`. Without it these tests are skipped locally and
// FAIL under CI (env CI set), so a CI machine that lost the package cannot pass silently.

import AHTestSupport
import Foundation
import XCTest

final class AioquicInteropTests: XCTestCase {
    private var peer: String { BuiltProducts.interopScript("aioquic_peer.py").path }

    /// aioquic client → `ah debug quic-echo-server`.
    func testAioquicClientEchoesThroughAhServer() async throws {
        let python = try await Self.requirePythonModule("aioquic")
        let fixture = try await CLIFixture.make()
        let (server, address) = try await fixture.startEchoServer()
        try await withChildProcess(server) { server in
            let client = try await ProcessRunner.run(python, [
                peer, "client", "--connect", address.description,
            ] + fixture.clientTLS + [
                "--server-id", CLIFixture.serveID, "--bytes", "1048576", "--timeout", "60",
            ], timeout: 90)
            XCTAssertEqual(client.exit, .exited(0), client.transcript + "\n" + server.transcript)
            let result = try Self.lastJSONLine(client)
            XCTAssertEqual(result["ok"] as? Bool, true, "\(result)")
            XCTAssertEqual(result["echoMatched"] as? Bool, true, "\(result)")
            XCTAssertEqual(result["alpn"] as? String, "ah/1", "\(result)")
            XCTAssertEqual(result["serverIds"] as? [String], [CLIFixture.serveID], "\(result)")
            XCTAssertEqual((result["bytesPerStream"] as? NSNumber)?.intValue, 1_048_576, "\(result)")
        }
    }

    /// `ah debug quic-echo` → aioquic server (which requires and verifies the client's
    /// certificate against the same CA).
    func testAhClientEchoesThroughAioquicServer() async throws {
        let python = try await Self.requirePythonModule("aioquic")
        let fixture = try await CLIFixture.make()
        let (server, address) = try await CLIFixture.startAnnouncing(python, [
            peer, "server", "--listen", "127.0.0.1:0",
        ] + fixture.serverTLS)
        try await withChildProcess(server) { server in
            let client = try await ProcessRunner.run(fixture.ah, [
                "debug", "quic-echo", "--connect", address.description,
            ] + fixture.clientTLS + [
                "--server-id", CLIFixture.serveID, "--streams", "1", "--bytes", "1048576",
            ], timeout: 90)
            XCTAssertEqual(client.exit, .exited(0), client.transcript + "\n" + server.transcript)
            // The independent side saw our identity and echoed every byte, then our FIN.
            try await server.waitForStderr(containing: "stream 0 echoed 1048576 bytes, finished", timeout: 10)
            XCTAssertTrue(server.stderr.contains("alpn=ah/1 peer=\(CLIFixture.devID)"), server.transcript)
        }
    }

    /// The aioquic client is refused by `ah` when its ID is not allowed, and says so.
    func testAhServerRefusesAioquicClientOutsideAllowList() async throws {
        let python = try await Self.requirePythonModule("aioquic")
        let fixture = try await CLIFixture.make()
        let (server, address) = try await fixture.startEchoServer(extra: [
            "--allow-id", "spiffe://example.org/ah/agent/other",
        ])
        try await withChildProcess(server) { server in
            let client = try await ProcessRunner.run(python, [
                peer, "client", "--connect", address.description,
            ] + fixture.clientTLS + ["--bytes", "4096", "--timeout", "20"], timeout: 60)
            XCTAssertNotEqual(client.exit, .exited(0), client.transcript + "\n" + server.transcript)
            let result = try Self.lastJSONLine(client)
            XCTAssertEqual(result["ok"] as? Bool, false, "\(result)")
        }
    }

    /// The peer script itself, against itself and against ngtcp2's GnuTLS examples; needs
    /// no `ah`, so it tells a broken peer apart from a broken `ah`.
    func testInteropPeerSelfCheck() async throws {
        let python = try await Self.requirePythonModule("aioquic")
        var arguments = [BuiltProducts.interopScript("selfcheck.py").path]
        if Executables.gtlsclient() == nil || Executables.gtlsserver() == nil {
            if isRunningUnderCI {
                XCTFail("ngtcp2's gtlsclient/gtlsserver are missing (apt-get install ngtcp2-client ngtcp2-server)")
                return
            }
            arguments.append("--skip-ngtcp2")
        }
        let result = try await ProcessRunner.run(python, arguments, timeout: 240)
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertTrue(result.stdoutString.contains(" 0 failed"), result.transcript)
    }

    // MARK: Helpers

    /// python3 if it can import `module`; XCTSkip locally, a failure under CI.
    static func requirePythonModule(_ module: String) async throws -> URL {
        if let problem = await Python.importProblem(module) {
            if isRunningUnderCI {
                throw InteropRequirementError(
                    "CI is set and \(problem); install it with `python3 -m pip install \(module)` (.ci/run does)")
            }
            throw XCTSkip("\(problem); run `python3 -m pip install \(module)` to enable the aioquic interop tests")
        }
        return try Executables.python3()
    }

    /// The peer prints one JSON object as its last stdout line.
    static func lastJSONLine(_ result: ProcessResult) throws -> [String: Any] {
        guard let line = result.stdoutString.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else {
            throw InteropRequirementError("the aioquic peer printed no JSON result\n\(result.transcript)")
        }
        return object
    }
}

struct InteropRequirementError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
