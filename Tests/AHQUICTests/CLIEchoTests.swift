// The QUIC debug commands end to end, as an operator runs them: real `ah` processes on
// 127.0.0.1, certificates from `ah debug dev-certs` in a temp directory (no key is ever
// committed), and the exit-code / output contract of shared/cli.md.

import AHTestSupport
import Foundation
import XCTest

final class CLIEchoTests: XCTestCase {
    func testEchoEightStreamsOfOneMiBWithJSON() async throws {
        let fixture = try await CLIFixture.make()
        let (server, address) = try await fixture.startEchoServer()
        try await withChildProcess(server) { server in
            let client = try await ProcessRunner.run(fixture.ah, [
                "debug", "quic-echo", "--connect", address.description,
            ] + fixture.clientTLS + [
                "--server-id", CLIFixture.serveID,
                "--streams", "8", "--bytes", "1048576", "--json",
            ], timeout: 180)
            XCTAssertEqual(client.exit, .exited(0), client.transcript + "\n" + server.transcript)

            // --json: one JSON document on stdout, nothing else.
            let object = try JSONSerialization.jsonObject(with: client.stdout)
            let json = try XCTUnwrap(object as? [String: Any], "stdout is not a JSON object:\n\(client.stdoutString)")
            XCTAssertEqual((json["streams"] as? NSNumber)?.intValue, 8, "\(json)")
            XCTAssertEqual((json["bytesPerStream"] as? NSNumber)?.intValue, 1_048_576, "\(json)")
            let seconds = try XCTUnwrap((json["seconds"] as? NSNumber)?.doubleValue, "\(json)")
            let rate = try XCTUnwrap((json["mibPerSecond"] as? NSNumber)?.doubleValue, "\(json)")
            XCTAssertGreaterThan(seconds, 0)
            XCTAssertGreaterThan(rate, 0)
            XCTAssertTrue(server.isRunning, "the echo server must keep serving after a client leaves\n\(server.transcript)")
        }
    }

    func testEchoServerRefusesAClientOutsideItsAllowList() async throws {
        let fixture = try await CLIFixture.make()
        let (server, address) = try await fixture.startEchoServer(extra: [
            "--allow-id", "spiffe://example.org/ah/agent/other",
        ])
        try await withChildProcess(server) { server in
            let client = try await ProcessRunner.run(fixture.ah, [
                "debug", "quic-echo", "--connect", address.description,
            ] + fixture.clientTLS + ["--bytes", "4096"], timeout: 60)
            XCTAssertNotEqual(client.exit, .exited(0), "a refused client must fail\n\(client.transcript)")
            XCTAssertEqual(client.exit.reason, .exited, "the client must exit, not crash\n\(client.transcript)")
            // The server says whom it refused.
            do {
                try await server.waitForStderr(containing: CLIFixture.devID, timeout: 10)
            } catch {
                XCTFail("the server's stderr does not name the presented ID \(CLIFixture.devID): \(error)")
            }
            XCTAssertTrue(server.isRunning, "refusing one client must not stop the server\n\(server.transcript)")
        }
    }

    func testEchoClientRefusesAServerWithAnotherID() async throws {
        let fixture = try await CLIFixture.make()
        let (server, address) = try await fixture.startEchoServer()
        try await withChildProcess(server) { _ in
            let client = try await ProcessRunner.run(fixture.ah, [
                "debug", "quic-echo", "--connect", address.description,
            ] + fixture.clientTLS + [
                "--server-id", "spiffe://example.org/ah/someone-else", "--bytes", "4096",
            ], timeout: 60)
            XCTAssertNotEqual(client.exit, .exited(0), client.transcript)
            XCTAssertEqual(client.exit.reason, .exited, client.transcript)
        }
    }

    func testBadListenAddressExitsTwoWithOneLineNamingIt() async throws {
        let fixture = try await CLIFixture.make()
        let result = try await ProcessRunner.run(fixture.ah, [
            "debug", "quic-echo-server", "--listen", "nonsense",
        ] + fixture.serverTLS, timeout: 30)
        fixture.assertBadInput(result, naming: "nonsense")
    }

    func testBadConnectAddressExitsTwoWithOneLineNamingIt() async throws {
        let fixture = try await CLIFixture.make()
        let result = try await ProcessRunner.run(fixture.ah, [
            "debug", "quic-echo", "--connect", "nonsense:port",
        ] + fixture.clientTLS, timeout: 30)
        fixture.assertBadInput(result, naming: "nonsense:port")
    }

    func testMissingCertificateFileExitsTwoNamingIt() async throws {
        let fixture = try await CLIFixture.make()
        let missing = fixture.directory.file("absent.pem").path
        let result = try await ProcessRunner.run(fixture.ah, [
            "debug", "quic-echo-server", "--listen", "127.0.0.1:0",
            "--cert", missing, "--key", fixture.file("serve-key.pem"), "--ca", fixture.file("ca.pem"),
        ], timeout: 30)
        fixture.assertBadInput(result, naming: missing)
    }
}

/// A temp directory with `ah debug dev-certs` output and the `ah` under test.
struct CLIFixture {
    static let serveID = "spiffe://example.org/ah/serve"
    static let devID = "spiffe://example.org/ah/agent/dev"

    let ah: URL
    let directory: TemporaryDirectory

    /// Runs `ah debug dev-certs --out TMPDIR` (default IDs → serve.pem, dev.pem).
    static func make(file: StaticString = #filePath, line: UInt = #line) async throws -> CLIFixture {
        let ah = try BuiltProducts.ah()
        let directory = try TemporaryDirectory(prefix: "ah-quic-cli")
        let certs = directory.file("certs")
        let result = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", certs.path], timeout: 60)
        guard result.exit.succeeded else {
            XCTFail("ah debug dev-certs failed\n\(result.transcript)", file: file, line: line)
            throw CLIFixtureError("ah debug dev-certs failed")
        }
        let fixture = CLIFixture(ah: ah, directory: directory)
        for name in ["ca.pem", "serve.pem", "serve-key.pem", "dev.pem", "dev-key.pem"]
        where !FileManager.default.fileExists(atPath: fixture.file(name)) {
            XCTFail("ah debug dev-certs did not write \(name)\n\(result.transcript)", file: file, line: line)
            throw CLIFixtureError("missing \(name)")
        }
        return fixture
    }

    func file(_ name: String) -> String { directory.file("certs").appendingPathComponent(name).path }

    /// --cert/--key/--ca for spiffe://example.org/ah/serve.
    var serverTLS: [String] { ["--cert", file("serve.pem"), "--key", file("serve-key.pem"), "--ca", file("ca.pem")] }
    /// --cert/--key/--ca for spiffe://example.org/ah/agent/dev.
    var clientTLS: [String] { ["--cert", file("dev.pem"), "--key", file("dev-key.pem"), "--ca", file("ca.pem")] }

    /// Starts `ah debug quic-echo-server` on 127.0.0.1:0 and returns it with the address it
    /// announced ("listening on HOST:PORT").
    func startEchoServer(extra: [String] = []) async throws -> (ChildProcess, HostAndPort) {
        try await Self.startAnnouncing(ah, ["debug", "quic-echo-server", "--listen", "127.0.0.1:0"] + serverTLS + extra)
    }

    static func startAnnouncing(_ executable: URL, _ arguments: [String]) async throws -> (ChildProcess, HostAndPort) {
        let (process, rest) = try await ProcessRunner.startAndAwait(
            executable, arguments, linePrefix: "listening on ", timeout: 30)
        guard let address = HostAndPort(parsing: rest), address.port != 0 else {
            await process.terminate(grace: 2)
            throw CLIFixtureError("cannot parse the announced address \"\(rest)\"\n\(process.transcript)")
        }
        return (process, address)
    }

    /// Exit code 2 and exactly one line on stderr that names `value` (shared/cli.md).
    func assertBadInput(_ result: ProcessResult, naming value: String,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.exit, .exited(2), result.transcript, file: file, line: line)
        let lines = result.stderrString.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "stderr must be one line\n\(result.transcript)", file: file, line: line)
        XCTAssertTrue(result.stderrString.contains(value), "stderr must name \(value)\n\(result.transcript)",
                      file: file, line: line)
    }
}

struct CLIFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
