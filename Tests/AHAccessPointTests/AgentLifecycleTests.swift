import AHTestSupport
import Foundation
import XCTest

/// `ah agent enroll`'s life as a process: a revoked identity ends it with exit 3 (the
/// systemd unit's RestartPreventExitStatus=3), and a second SIGTERM cuts the shutdown grace
/// short while a tunnel is still open.
final class AgentLifecycleTests: XCTestCase {
    var fixture: TunnelFixture!
    var serve: ServeProcess?

    override func tearDown() async throws {
        await fixture?.stop()
        await serve?.stop()
    }

    func testRevokedExecutorExitsThreeInsteadOfRetryingForever() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-revoked")
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path)
        self.serve = serve
        let token = try await tokenCreate(serve)
        let agent = try await startAgent(["--remote-server", serve.remote, "--state-dir", directory.file("agent").path,
                                          "--name", "gone", "--token", token, "--ca-pin", serve.pin])
        let revoke = try await ah(["executors", "revoke", "gone", "--data-dir", serve.dataDir, "--reason", "test"])
        XCTAssertEqual(revoke.exit, .exited(0), revoke.transcript)
        let revoked = Date()
        // One reconnect hears the handshake refusal; then it stops for good.
        let exit = try await agent.waitForExit(timeout: 20)
        XCTAssertEqual(exit, .exited(3), agent.transcript)
        XCTAssertLessThan(Date().timeIntervalSince(revoked), 10, "bounded: no backoff escalation before giving up")
        XCTAssertTrue(agent.transcript.contains("revoked"), agent.transcript)
        XCTAssertTrue(agent.transcript.contains("--token"), "says what to do: \(agent.transcript)")
    }

    func testRestartedAgentWithARevokedIdentityExitsThree() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-revoked-restart")
        let serve = try await ServeProcess.start(dataDir: directory.file("data").path)
        self.serve = serve
        let token = try await tokenCreate(serve)
        let state = directory.file("agent").path
        let enrolled = try await ah(["agent", "enroll", "--enroll-only", "--remote-server", serve.remote, "--state-dir", state,
                                     "--name", "old", "--token", token, "--ca-pin", serve.pin])
        XCTAssertEqual(enrolled.exit, .exited(0), enrolled.transcript)
        let revoke = try await ah(["executors", "revoke", "old", "--data-dir", serve.dataDir])
        XCTAssertEqual(revoke.exit, .exited(0), revoke.transcript)
        // What systemd does after a reboot: start it again with the stored identity.
        let again = try await ah(["agent", "enroll", "--remote-server", serve.remote, "--state-dir", state, "--name", "old"], timeout: 20)
        XCTAssertEqual(again.exit, .exited(3), again.transcript)
        XCTAssertTrue(again.stderrString.contains("identity revoked"), again.stderrString)
    }

    func testSecondSIGTERMEndsTheGracePeriodAtOnce() async throws {
        try Requirement.sshd()
        fixture = try TunnelFixture()
        try await fixture.start()
        try await fixture.addExecutor("node1", extra: ["--shutdown-grace", "60s"])
        let token = try await fixture.userToken()
        let session = try fixture.startSSH("node1", "echo started >&2; read line; echo \"got $line\"", tokenFile: token.file,
                                           captureStdin: true)
        try await session.waitForStderr(containing: "started", timeout: 30)
        let agent = fixture.agents["node1"]!
        agent.send(signal: SIGTERM)
        try await agent.waitForStderr(containing: "waiting for open tunnels", timeout: 10)
        _ = try await fixture.waitForState("node1", "degraded", timeout: 5)
        // The session is still open (60 s of grace left); a second SIGTERM ends the wait now.
        let second = Date()
        agent.send(signal: SIGTERM)
        let exit = try await agent.waitForExit(timeout: 10)
        XCTAssertLessThan(Date().timeIntervalSince(second), 5, "exited promptly, not after the grace period")
        XCTAssertEqual(exit, .exited(0), agent.transcript)
        XCTAssertTrue(agent.transcript.contains("stopped again; closing open tunnels"), agent.transcript)
        _ = try await fixture.waitForState("node1", "offline", timeout: 5)
        // The cut session sees its connection end.
        let sessionExit = try await session.waitForExit(timeout: 20)
        XCTAssertNotEqual(sessionExit, .exited(0), session.transcript)
    }
}
