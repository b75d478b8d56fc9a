import AHTestSupport
import Foundation
import XCTest

/// Enrollment and identity with real processes: `ah serve`, `ah token create`,
/// `ah agent enroll`, `ah executors list/revoke` on loopback, real SQLite, real QUIC.
final class EnrollmentFlowTests: XCTestCase {
    var directory: TemporaryDirectory!
    var serve: ServeProcess!
    var agents: [ChildProcess] = []

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-enroll")
        serve = try await ServeProcess.start(dataDir: directory.file("data").path)
    }

    override func tearDown() async throws {
        for agent in agents { _ = await agent.terminate(grace: 3) }
        await serve?.stop()
    }

    private func enrollArguments(name: String, token: String? = nil, state: String? = nil) -> [String] {
        var args = ["--remote-server", serve.remote, "--state-dir", state ?? directory.file("agent-\(name)").path, "--name", name]
        if let token { args += ["--token", token, "--ca-pin", serve.pin] }
        return args
    }

    func testFullFlowEnrollConnectAndList() async throws {
        // The data dir was created 0700 with a 0600 CA key and state file.
        let attributes = try FileManager.default.attributesOfItem(atPath: serve.dataDir)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o700)
        for file in ["ca-key.pem", "serve-key.pem", "state.sqlite"] {
            let mode = try FileManager.default.attributesOfItem(atPath: serve.dataDir + "/" + file)[.posixPermissions] as? NSNumber
            XCTAssertEqual(mode?.intValue, 0o600, file)
        }
        let pin = try await ah(["ca", "pin", "--data-dir", serve.dataDir])
        XCTAssertEqual(pin.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines), serve.pin)

        let token = try await tokenCreate(serve, ["--tag", "os=linux", "--tag", "arch=x64"])
        agents.append(try await startAgent(enrollArguments(name: "node1", token: token)))

        let keyMode = try FileManager.default.attributesOfItem(atPath: directory.file("agent-node1/key.pem").path)[.posixPermissions] as? NSNumber
        XCTAssertEqual(keyMode?.intValue, 0o600)
        let items = try await executorsJSON(serve)
        XCTAssertEqual(items.count, 1)
        XCTAssertEqual(items.first?["name"] as? String, "node1")
        XCTAssertEqual(items.first?["spiffeId"] as? String, "spiffe://example.org/ah/agent/node1")
        XCTAssertEqual(items.first?["state"] as? String, "connected")
        XCTAssertEqual(items.first?["tags"] as? [String: String], ["os": "linux", "arch": "x64"])
        XCTAssertNotNil(items.first?["certNotAfter"] as? String)
    }

    func testTokenUsesAreEnforced() async throws {
        let token = try await tokenCreate(serve, ["--uses", "1"])
        let first = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "a", token: token))
        XCTAssertEqual(first.exit, .exited(0), first.transcript)
        let second = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "b", token: token))
        XCTAssertEqual(second.exit, .exited(3), second.transcript)
        XCTAssertTrue(second.stderrString.contains("token-used-up"), second.stderrString)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.file("agent-b/cert.pem").path),
                       "a refused enrollment must not leave a certificate behind")
    }

    func testBadTokensAndPinsAreRefusedWithClearErrors() async throws {
        let unknown = "ahjt.abcdefghij.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        let result = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "x", token: unknown))
        XCTAssertEqual(result.exit, .exited(3), result.transcript)
        XCTAssertTrue(result.stderrString.contains("token-unknown"), result.stderrString)

        let malformed = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "x", token: "not-a-token"))
        XCTAssertEqual(malformed.exit, .exited(3), malformed.transcript)
        XCTAssertTrue(malformed.stderrString.contains("token-malformed"), malformed.stderrString)

        let token = try await tokenCreate(serve)
        var args = enrollArguments(name: "x", token: token)
        args[args.firstIndex(of: serve.pin)!] = "sha256:" + String(repeating: "ab", count: 32)
        let wrongPin = try await ah(["agent", "enroll", "--enroll-only"] + args)
        XCTAssertEqual(wrongPin.exit, .exited(3), wrongPin.transcript)
        XCTAssertTrue(wrongPin.stderrString.contains("pinned CA"), wrongPin.stderrString)
        // Refused before the token was sent: it still enrolls afterwards.
        let afterwards = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "x", token: token))
        XCTAssertEqual(afterwards.exit, .exited(0), afterwards.transcript)

        let badName = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "bad/name", token: token))
        XCTAssertEqual(badName.exit, .exited(2), badName.transcript)
        XCTAssertTrue(badName.stderrString.contains("bad/name"), badName.stderrString)

        let badPin = try await ah(["agent", "enroll", "--enroll-only", "--remote-server", serve.remote, "--state-dir",
                                   directory.file("p").path, "--name", "p", "--token", token, "--ca-pin", "nonsense"])
        XCTAssertEqual(badPin.exit, .exited(2), badPin.transcript)
        XCTAssertTrue(badPin.stderrString.contains("nonsense"), badPin.stderrString)
    }

    func testExpiredTokenIsRefused() async throws {
        let token = try await tokenCreate(serve, ["--ttl", "1s"])
        // The scenario is "the token's lifetime passes"; nothing else to wait on.
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let result = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "late", token: token))
        XCTAssertEqual(result.exit, .exited(3), result.transcript)
        XCTAssertTrue(result.stderrString.contains("token-expired"), result.stderrString)
    }

    func testNameEnrolledToAnotherKeyIsRefusedUntilRevoked() async throws {
        let token = try await tokenCreate(serve, ["--uses", "3"])
        let first = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "dup", token: token))
        XCTAssertEqual(first.exit, .exited(0), first.transcript)
        let other = directory.file("other-dup").path
        let second = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "dup", token: token, state: other))
        XCTAssertEqual(second.exit, .exited(3), second.transcript)
        XCTAssertTrue(second.stderrString.contains("name-taken"), second.stderrString)
        let revoke = try await ah(["executors", "revoke", "dup", "--data-dir", serve.dataDir])
        XCTAssertEqual(revoke.exit, .exited(0), revoke.transcript)
        let third = try await ah(["agent", "enroll", "--enroll-only"] + enrollArguments(name: "dup", token: token, state: other))
        XCTAssertEqual(third.exit, .exited(0), third.transcript)
    }

    func testRevocationClosesTheLiveConnectionAndRefusesReconnects() async throws {
        let token = try await tokenCreate(serve)
        let agent = try await startAgent(enrollArguments(name: "victim", token: token))
        agents.append(agent)
        let started = Date()
        let revoke = try await ah(["executors", "revoke", "victim", "--data-dir", serve.dataDir, "--reason", "test"])
        XCTAssertEqual(revoke.exit, .exited(0), revoke.transcript)
        try await agent.waitForStderr(containing: "identity revoked", timeout: 5)
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5, "the live connection should close within about a second")
        // The agent keeps trying; every reconnect is refused during the handshake.
        try await agent.waitForStderr(containing: "victim refused: identity revoked", timeout: 20)
        try await serve.process.waitForStderr(containing: "refused: identity revoked", timeout: 5)
        // Still listed, as revoked, and a tunnel to it says so (410) instead of "no such executor".
        let items = try await executorsJSON(serve)
        XCTAssertEqual(items.first { $0["name"] as? String == "victim" }?["state"] as? String, "revoked", "\(items)")
        let jwt = try await ah(["user", "token", "--data-dir", serve.dataDir, "--sub", "op"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let connect = try await ah(["connect", "victim", "--remote-server", "http://127.0.0.1:\(serve.httpPort)", "--token", jwt])
        XCTAssertEqual(connect.exit, .exited(3), connect.transcript)
        XCTAssertTrue(connect.stderrString.contains("revoked"), connect.stderrString)
    }

    func testRestartsOfServeAndExecutorKeepTheIdentity() async throws {
        let token = try await tokenCreate(serve)
        let agent = try await startAgent(enrollArguments(name: "steady", token: token))
        agents.append(agent)
        let port = serve.quicPort
        await serve.stop()
        serve = try await ServeProcess.start(dataDir: directory.file("data").path, quicPort: port)
        // Back with its stored identity, no token.
        try await agent.waitForStderr(containing: "connections=2", timeout: 60)

        _ = await agent.terminate(grace: 5)
        let restarted = try await startAgent(enrollArguments(name: "steady"))
        agents.append(restarted)
        let items = try await executorsJSON(serve)
        XCTAssertEqual(items.first { $0["name"] as? String == "steady" }?["state"] as? String, "connected")
    }

    func testAgentWithoutIdentityOrTokenExitsTwo() async throws {
        let result = try await ah(["agent", "enroll", "--remote-server", serve.remote, "--state-dir", directory.file("empty").path, "--name", "n"])
        XCTAssertEqual(result.exit, .exited(2), result.transcript)
        XCTAssertTrue(result.stderrString.contains("enroll first"), result.stderrString)
    }
}

/// Renewal needs short certificates: a separate access point with --svid-ttl 10s.
final class RenewalTests: XCTestCase {
    func testExecutorRenewsTwiceWithoutDroppingItsConnection() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-renew")
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path, extra: ["--svid-ttl", "10s"])
        defer { Task { await serve.stop() } }
        let token = try await tokenCreate(serve)
        let agent = try await startAgent(["--remote-server", serve.remote, "--state-dir", directory.file("agent").path,
                                          "--name", "renewer", "--token", token, "--ca-pin", serve.pin])
        defer { Task { _ = await agent.terminate(grace: 3) } }
        let before = try String(contentsOfFile: directory.file("agent/cert.pem").path)
        let connected = Date()
        try await agent.waitForStderr(containing: "renewals=2", timeout: 30)
        // Renewal at about half of a 10 s lifetime: the second one comes after ~7.5-10 s,
        // not in a burst (a burst would mean the half-life arithmetic is wrong).
        XCTAssertGreaterThan(Date().timeIntervalSince(connected), 6, agent.stderr)
        XCTAssertFalse(agent.stderr.contains("renewals=3"), agent.stderr)
        let after = try String(contentsOfFile: directory.file("agent/cert.pem").path)
        XCTAssertNotEqual(before, after, "the stored certificate was replaced")
        XCTAssertFalse(agent.stderr.contains("connection to access point ended"), agent.stderr)
        XCTAssertFalse(agent.stderr.contains("connections=2"), "the connection was re-established: \(agent.stderr)")
        try await serve.process.waitForStderr(containing: "certificate renewed", timeout: 1)
    }
}

/// An executor whose stored certificate has expired cannot reconnect: it says so and exits 3.
final class ExpiredIdentityTests: XCTestCase {
    func testExpiredStoredIdentityExitsThreeAskingForANewToken() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-expired")
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path, extra: ["--svid-ttl", "10s"])
        defer { Task { await serve.stop() } }
        let token = try await tokenCreate(serve)
        let state = directory.file("agent").path
        let enrolled = try await ah(["agent", "enroll", "--enroll-only", "--remote-server", serve.remote, "--state-dir", state,
                                     "--name", "sleeper", "--token", token, "--ca-pin", serve.pin])
        XCTAssertEqual(enrolled.exit, .exited(0), enrolled.transcript)
        // The scenario is "the 10 s certificate runs out while the executor is down".
        try await Task.sleep(nanoseconds: 11_000_000_000)
        let result = try await ah(["agent", "enroll", "--remote-server", serve.remote, "--state-dir", state, "--name", "sleeper"])
        XCTAssertEqual(result.exit, .exited(3), result.transcript)
        XCTAssertTrue(result.stderrString.contains("expired"), result.stderrString)
        XCTAssertTrue(result.stderrString.contains("new --token"), result.stderrString)
    }
}
