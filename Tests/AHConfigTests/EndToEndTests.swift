// The real `ah` binary: env and config file values take effect through the generic
// fill-in, in the documented order, and bad ones are exit 2 with one line naming them.

import AHTestSupport
import Foundation
import XCTest

final class EndToEndTests: XCTestCase {
    func testDevCertsTakesTrustDomainFromEnvironmentThenFileThenFlag() async throws {
        let ah = try BuiltProducts.ah()
        let directory = try TemporaryDirectory(prefix: "ah-config-e2e")
        let config = directory.file("ah.toml")
        try Data("[debug.dev-certs]\ntrust-domain = \"file.example\"\njson = true\n".utf8).write(to: config)

        // Env only (json from the environment too).
        var json = try await devCerts(ah, out: directory.file("a").path, env: ["AH_TRUST_DOMAIN": "env.example", "AH_JSON": "1"])
        XCTAssertEqual(json["trustDomain"] as? String, "env.example")
        let ids = (json["identities"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
        XCTAssertEqual(ids, ["spiffe://env.example/ah/serve", "spiffe://env.example/ah/agent/dev"])

        // File only (json = true from the file).
        json = try await devCerts(ah, out: directory.file("b").path, extra: ["--config", config.path])
        XCTAssertEqual(json["trustDomain"] as? String, "file.example")

        // Env beats file.
        json = try await devCerts(ah, out: directory.file("c").path, extra: ["--config=\(config.path)"],
                                  env: ["AH_TRUST_DOMAIN": "env.example"])
        XCTAssertEqual(json["trustDomain"] as? String, "env.example")

        // Flag beats env and file; AH_CONFIG names the file.
        json = try await devCerts(ah, out: directory.file("d").path, extra: ["--trust-domain", "flag.example"],
                                  env: ["AH_TRUST_DOMAIN": "env.example", "AH_CONFIG": config.path])
        XCTAssertEqual(json["trustDomain"] as? String, "flag.example")
    }

    func testQUICEchoTakesBytesFromEnvironmentAndStreamsFromFile() async throws {
        let ah = try BuiltProducts.ah()
        let directory = try TemporaryDirectory(prefix: "ah-config-e2e")
        let certs = directory.file("certs").path
        let made = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", certs], timeout: 60)
        XCTAssertTrue(made.exit.succeeded, made.transcript)
        func pem(_ name: String) -> String { "\(certs)/\(name).pem" }

        // Both sides read their certificates from one file, each from its own table.
        let config = directory.file("ah.toml")
        try Data("""
            ca = "\(pem("ca"))"
            [debug.quic-echo-server]
            cert = "\(pem("serve"))"
            key = "\(pem("serve-key"))"
            [debug.quic-echo]
            cert = "\(pem("dev"))"
            key = "\(pem("dev-key"))"
            streams = 3
            json = true
            """.utf8).write(to: config)
        let (server, rest) = try await ProcessRunner.startAndAwait(
            ah, ["debug", "quic-echo-server", "--listen", "127.0.0.1:0"],
            linePrefix: "listening on ", environment: ["AH_CONFIG": config.path], timeout: 30)
        try await withChildProcess(server) { server in
            let client = try await ProcessRunner.run(ah, [
                "debug", "quic-echo", "--connect", rest.trimmingCharacters(in: .whitespaces), "--config", config.path,
            ], environment: ["AH_BYTES": "2048"], timeout: 120)
            XCTAssertEqual(client.exit, .exited(0), client.transcript + "\n" + server.transcript)
            let json = try XCTUnwrap(JSONSerialization.jsonObject(with: client.stdout) as? [String: Any], client.transcript)
            XCTAssertEqual((json["bytesPerStream"] as? NSNumber)?.intValue, 2048, "\(json)")
            XCTAssertEqual((json["streams"] as? NSNumber)?.intValue, 3, "\(json)")
        }
    }

    func testBadEnvironmentValuesExitTwoWithOneLineNamingTheVariable() async throws {
        let ah = try BuiltProducts.ah()
        let directory = try TemporaryDirectory(prefix: "ah-config-e2e")
        // A flag word we cannot read: rejected before parsing.
        let flag = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", directory.file("x").path],
                                               environment: ["AH_JSON": "maybe"], timeout: 30)
        assertBadInput(flag, naming: ["AH_JSON", "maybe"])
        // A value ArgumentParser rejects: its message, plus the variable it came from.
        let bytes = try await ProcessRunner.run(ah, [
            "debug", "quic-echo", "--connect", "127.0.0.1:1", "--cert", "c", "--key", "k", "--ca", "a",
        ], environment: ["AH_BYTES": "lots"], timeout: 30)
        assertBadInput(bytes, naming: ["AH_BYTES", "lots"])
        // A value the command itself rejects (CLIError.usage), likewise.
        let domain = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", directory.file("y").path],
                                                 environment: ["AH_TRUST_DOMAIN": "Not A Domain"], timeout: 30)
        assertBadInput(domain, naming: ["AH_TRUST_DOMAIN", "Not A Domain"])
    }

    func testBadConfigFileExitsTwoWithOneLineNamingIt() async throws {
        let ah = try BuiltProducts.ah()
        let directory = try TemporaryDirectory(prefix: "ah-config-e2e")
        let config = directory.file("broken.toml")
        try Data("trust-domain = \n".utf8).write(to: config)
        let broken = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", directory.file("x").path,
                                                      "--config", config.path], timeout: 30)
        assertBadInput(broken, naming: [config.path, "line 1"])

        let missing = directory.file("missing.toml").path
        let absent = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", directory.file("x").path],
                                                 environment: ["AH_CONFIG": missing], timeout: 30)
        assertBadInput(absent, naming: [missing])

        try Data("[debug.dev-certs]\ntrust-domain = { a = 1 }\n".utf8).write(to: config)
        let shape = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", directory.file("x").path,
                                                     "--config", config.path], timeout: 30)
        assertBadInput(shape, naming: [config.path, "trust-domain"])
    }

    func testUnknownKeyIsAWarningAndHelpDocumentsConfig() async throws {
        let ah = try BuiltProducts.ah()
        let directory = try TemporaryDirectory(prefix: "ah-config-e2e")
        let config = directory.file("ah.toml")
        try Data("trust_domian = \"typo.example\"\n".utf8).write(to: config)
        let result = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", directory.file("x").path,
                                                      "--config", config.path], timeout: 60)
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertTrue(result.stderrString.contains("warning") && result.stderrString.contains("trust_domian"),
                      result.transcript)

        let help = try await ProcessRunner.run(ah, ["debug", "quic-echo", "--help"],
                                               environment: ["AH_CONFIG": "/does/not/exist.toml"], timeout: 30)
        XCTAssertEqual(help.exit, .exited(0), help.transcript)
        XCTAssertTrue(help.stdoutString.contains("--config <file>"), help.transcript)
        XCTAssertTrue(help.stdoutString.contains("--log-level <level>"), help.transcript)
    }

    // MARK: Helpers

    private func devCerts(_ ah: URL, out: String, extra: [String] = [], env: [String: String] = [:],
                          file: StaticString = #filePath, line: UInt = #line) async throws -> [String: Any] {
        let result = try await ProcessRunner.run(ah, ["debug", "dev-certs", "--out", out] + extra,
                                                 environment: env, timeout: 60)
        XCTAssertEqual(result.exit, .exited(0), result.transcript, file: file, line: line)
        let object = try? JSONSerialization.jsonObject(with: result.stdout)
        return try XCTUnwrap(object as? [String: Any], "stdout is not one JSON object\n\(result.transcript)",
                             file: file, line: line)
    }

    /// Exit 2 and exactly one stderr line containing every one of `words` (shared/cli.md).
    private func assertBadInput(_ result: ProcessResult, naming words: [String],
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.exit, .exited(2), result.transcript, file: file, line: line)
        let lines = result.stderrString.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "stderr must be one line\n\(result.transcript)", file: file, line: line)
        for word in words {
            XCTAssertTrue(result.stderrString.contains(word), "stderr must name \(word)\n\(result.transcript)",
                          file: file, line: line)
        }
    }
}
