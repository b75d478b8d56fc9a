import AHTestSupport
import Foundation
import XCTest

/// Command-line defects found by trying `ah` as a new user would: each test failed before
/// its fix. Real `ah serve` processes where a server is involved.
final class CLIFoundationTests: XCTestCase {
    var directory: TemporaryDirectory!
    var serve: ServeProcess?

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-cli")
    }

    override func tearDown() async throws {
        await serve?.stop()
    }

    func testVersionFlag() async throws {
        let result = try await ah(["--version"])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertNotNil(result.stdoutString.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression), result.stdoutString)
    }

    func testHTTPRemoteServerForEnrollIsAUsageErrorNamingTheValue() async throws {
        let result = try await ah(["agent", "enroll", "--remote-server", "http://127.0.0.1:8443",
                                   "--state-dir", directory.file("agent").path, "--name", "node"])
        XCTAssertEqual(result.exit, .exited(2), result.transcript)
        XCTAssertTrue(result.stderrString.contains("'http://127.0.0.1:8443'"), result.stderrString)
        XCTAssertTrue(result.stderrString.contains("quic://"), result.stderrString)
    }

    func testDottedAndOverlongNamesAreRefusedBeforeEnrolling() async throws {
        for name in ["web.prod", String(repeating: "a", count: 64), "-lead", "caf\u{e9}"] {
            let result = try await ah(["agent", "enroll", "--remote-server", "quic://127.0.0.1:9", "--state-dir",
                                       directory.file("agent").path, "--name=\(name)", "--token", "ahj_x", "--ca-pin",
                                       "sha256:" + String(repeating: "0", count: 64)])
            XCTAssertEqual(result.exit, .exited(2), "\(name): \(result.transcript)")
            XCTAssertTrue(result.stderrString.contains("executor name"), result.stderrString)
        }
    }

    func testSecondAccessPointOnTheSameQUICPortFailsWithAddressInUse() async throws {
        let first = try await ServeProcess.start(dataDir: directory.file("one").path)
        serve = first
        let second = try await ah(["serve", "--data-dir", directory.file("two").path,
                                   "--quic-listen", "127.0.0.1:\(first.quicPort)", "--http-listen", "127.0.0.1:0"], timeout: 20)
        XCTAssertEqual(second.exit, .exited(2), second.transcript)
        XCTAssertTrue(second.stderrString.contains("address already in use"), second.stderrString)
        XCTAssertTrue(second.stderrString.contains("127.0.0.1:\(first.quicPort)"), second.stderrString)
    }

    func testConfigFileIsAcceptedByUserTokenAndExecutorsList() async throws {
        let started = try await ServeProcess.start(dataDir: directory.file("data").path)
        serve = started
        let userConfig = directory.file("user.toml").path
        try """
            [user.token]
            data-dir = "\(started.dataDir)"
            sub = "carol"
            role = "viewer"
            """.write(toFile: userConfig, atomically: true, encoding: .utf8)
        let token = try await ah(["user", "token", "--config", userConfig])
        XCTAssertEqual(token.exit, .exited(0), token.transcript)
        let jwt = token.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(jwt.split(separator: ".").count, 3, jwt)

        // The JWT stays off the command line: a token file named in the config file.
        let tokenFile = directory.file("token").path
        try (jwt + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let listConfig = directory.file("list.toml").path
        try """
            [executors.list]
            remote-server = "http://127.0.0.1:\(started.httpPort)"
            token-file = "\(tokenFile)"
            """.write(toFile: listConfig, atomically: true, encoding: .utf8)
        let list = try await ah(["executors", "list", "--config", listConfig, "--json"])
        XCTAssertEqual(list.exit, .exited(0), list.transcript)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: list.stdout) as? [String: Any], list.stdoutString)
        // And from the environment.
        let fromEnv = try await ProcessRunner.run(try BuiltProducts.ah(),
                                                  ["executors", "list", "--remote-server", "http://127.0.0.1:\(started.httpPort)"],
                                                  environment: ["AH_TOKEN_FILE": tokenFile])
        XCTAssertEqual(fromEnv.exit, .exited(0), fromEnv.transcript)
        XCTAssertTrue(fromEnv.stdoutString.hasPrefix("NAME"), fromEnv.stdoutString)
    }

    func testJoinTokenFromAFile() async throws {
        let started = try await ServeProcess.start(dataDir: directory.file("data").path)
        serve = started
        let token = try await tokenCreate(started)
        let file = directory.file("join").path
        try (token + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await ah(["agent", "enroll", "--remote-server", started.remote, "--state-dir", directory.file("agent").path,
                                   "--name", "filed", "--token-file", file, "--ca-pin", started.pin, "--enroll-only"])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertFalse(result.stderrString.contains(token), "the join token must not be logged")
        let missing = try await ah(["agent", "enroll", "--remote-server", started.remote, "--state-dir", directory.file("agent2").path,
                                    "--name", "other", "--token-file", directory.file("nope").path, "--ca-pin", started.pin])
        XCTAssertEqual(missing.exit, .exited(2), missing.transcript)
        XCTAssertTrue(missing.stderrString.contains(directory.file("nope").path), missing.stderrString)
    }

    func testSSHConfigWritesKnownHostsUnderHOME() async throws {
        let started = try await ServeProcess.start(dataDir: directory.file("data").path)
        serve = started
        let jwt = try await ah(["user", "token", "--data-dir", started.dataDir, "--sub", "dave", "--role", "viewer"])
        let tokenFile = directory.file("token").path
        try jwt.stdoutString.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let home = directory.file("home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let result = try await ProcessRunner.run(try BuiltProducts.ah(),
                                                 ["ssh-config", "--remote-server", "http://127.0.0.1:\(started.httpPort)",
                                                  "--token-file", tokenFile],
                                                 environment: ["HOME": home.path, "XDG_CONFIG_HOME": ""])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home.path + "/.config/ah/known_hosts"), result.transcript)
    }

    func testJSONLogFormatGivesOneObjectPerLine() async throws {
        let started = try await ServeProcess.start(dataDir: directory.file("data").path, extra: ["--log-format", "json"])
        serve = started
        await started.stop()
        serve = nil
        let lines = started.process.stderr.split(separator: "\n")
        XCTAssertGreaterThan(lines.count, 2, started.process.transcript)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            XCTAssertNotNil(object?["ts"] as? String, String(line))
            XCTAssertNotNil(object?["msg"] as? String, String(line))
            XCTAssertNotNil(object?["level"] as? String, String(line))
        }
        // Addresses are host:port, not NIO's "[IPv4]127.0.0.1/127.0.0.1:PORT".
        XCTAssertTrue(started.process.stderr.contains("\"quic\":\"127.0.0.1:\(started.quicPort)\""), started.process.stderr)
    }
}
