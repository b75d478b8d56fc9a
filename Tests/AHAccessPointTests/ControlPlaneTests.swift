import AHTestSupport
import Foundation
import XCTest

/// Registry states, dead paths, restarts and graceful shutdown, with real processes.
final class ControlPlaneTests: XCTestCase {
    var fixture: TunnelFixture!

    override func setUp() async throws {
        try Requirement.sshd()
    }

    override func tearDown() async throws {
        await fixture?.stop()
    }

    func testHelloFactsAndLateHeartbeatsMakeItDegraded() async throws {
        fixture = try TunnelFixture()
        try await fixture.start()
        try await fixture.addExecutor("node1")
        let item = try await fixture.executor("node1")
        XCTAssertEqual(item?["state"] as? String, "connected")
        let facts = item?["facts"] as? [String: Any]
        XCTAssertEqual(facts?["os"] as? String, "linux")
        XCTAssertEqual(facts?["sshEnabled"] as? Bool, true)
        XCTAssertEqual(facts?["heartbeatIntervalMillis"] as? Int, 1000)
        XCTAssertGreaterThan(facts?["cpuCount"] as? Int ?? 0, 0)
        let keys = facts?["sshHostKeys"] as? [[String: Any]] ?? []
        let served = fixture.daemons["node1"]!.hostKeyPublic.split(separator: " ")
        XCTAssertEqual(keys.first?["publicKey"] as? String, String(served[1]), "\(keys)")
        // Heartbeats arrive every second and are listed.
        var beat: [String: Any]?
        for _ in 0..<50 where beat == nil {
            beat = try await fixture.executor("node1")?["heartbeat"] as? [String: Any]
            if beat == nil { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        XCTAssertNotNil(beat?["uptimeSeconds"] as? Double)

        // Frozen: no heartbeats (and no QUIC packets) for a while → degraded; thawed → back.
        let agent = fixture.agents["node1"]!
        agent.send(signal: SIGSTOP)
        let late = try await fixture.waitForState("node1", "degraded", timeout: 15)
        // The transition is logged when it happens, not only computed when someone lists.
        try await fixture.serve.process.waitForStderr(containing: "executor degraded: heartbeats are late", timeout: 5)
        agent.send(signal: SIGCONT)
        XCTAssertLessThan(late, 15)
        _ = try await fixture.waitForState("node1", "connected", timeout: 10)
        try await fixture.serve.process.waitForStderr(containing: "executor connected again", timeout: 5)
    }

    func testKilledExecutorEndsTheSessionAndGoesOfflineWithinTheIdleTimeout() async throws {
        fixture = try TunnelFixture(serveArguments: ["--idle-timeout", "5s"])
        try await fixture.start()
        try await fixture.addExecutor("node1")
        let token = try await fixture.userToken()
        // A long download in flight when the executor dies.
        let ssh = try fixture.startSSH("node1", "echo started >&2; head -c 20000000000 /dev/zero", tokenFile: token.file)
        try await ssh.waitForStderr(containing: "started", timeout: 30)
        let killed = Date()
        fixture.agents["node1"]!.send(signal: SIGKILL)
        let exit = try await ssh.waitForExit(timeout: 30)
        XCTAssertNotEqual(exit, .exited(0), "ssh must see the connection end")
        let offlineAfter = try await fixture.waitForState("node1", "offline", timeout: 15)
        XCTAssertLessThan(Date().timeIntervalSince(killed), 5 + 5, "offline within the idle timeout (+ polling)")
        _ = offlineAfter
        // LAST SEEN is the last heartbeat (≤ 1 s before the kill), not the idle-timeout moment (5 s after).
        let item = try await fixture.executor("node1")
        let lastSeenText = try XCTUnwrap(item?["lastSeen"] as? String)
        let lastSeen = try XCTUnwrap(ISO8601DateFormatter().date(from: lastSeenText))
        XCTAssertLessThan(lastSeen.timeIntervalSince(killed), 1.5, "lastSeen \(lastSeenText), killed \(killed)")
        // The access point is healthy: it answers and takes a new executor.
        let ready = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-sf", "\(fixture.httpURL)/api/v1/readyz"])
        XCTAssertEqual(ready.exit, .exited(0), ready.transcript)
        try await fixture.addExecutor("node2")
        let again = try await fixture.ssh("node2", "echo fine", tokenFile: token.file)
        XCTAssertEqual(again.stdoutString, "fine\n", again.transcript)
    }

    func testAccessPointRestartExecutorsReconnectAndSSHWorks() async throws {
        fixture = try TunnelFixture()
        try await fixture.start()
        // The default 30 s idle timeout: the agent must learn of the crash from the restarted
        // access point (a stateless reset answering its next heartbeat), not by timing out.
        try await fixture.addExecutor("node1", extra: ["--heartbeat-interval", "1s"])
        let token = try await fixture.userToken()
        let quicPort = fixture.serve.quicPort
        fixture.serve.process.send(signal: SIGKILL)
        _ = try await fixture.serve.process.waitForExit(timeout: 10)
        fixture.serve = try await ServeProcess.start(dataDir: fixture.serve.dataDir, quicPort: quicPort)
        let restarted = Date()
        // Back within a heartbeat interval plus one backoff step (1 s base, full jitter).
        try await fixture.agents["node1"]!.waitForStderr(containing: "connections=2", timeout: 1 + 2 + 5)
        XCTAssertLessThan(Date().timeIntervalSince(restarted), 10, "reconnected long before the 30 s idle timeout")
        try await fixture.agents["node1"]!.waitForStderr(containing: "stateless reset", timeout: 1)
        _ = try await fixture.waitForState("node1", "connected", timeout: 10)
        let ssh = try await fixture.ssh("node1", "echo after-restart", tokenFile: token.file)
        XCTAssertEqual(ssh.stdoutString, "after-restart\n", ssh.transcript)
    }

    func testExecutorSIGTERMLetsOpenSessionsFinishAndRefusesNewOnes() async throws {
        fixture = try TunnelFixture()
        try await fixture.start()
        try await fixture.addExecutor("node1", extra: ["--shutdown-grace", "20s"])
        let token = try await fixture.userToken()
        let session = try fixture.startSSH("node1", "echo started >&2; read line; echo \"got $line\"", tokenFile: token.file,
                                           captureStdin: true)
        try await session.waitForStderr(containing: "started", timeout: 30)
        let agent = fixture.agents["node1"]!
        agent.send(signal: SIGTERM)
        try await agent.waitForStderr(containing: "waiting for open tunnels", timeout: 10)
        // While draining: listed as degraded (it said Goodbye), new tunnels refused with 503.
        _ = try await fixture.waitForState("node1", "degraded", timeout: 5)
        let refused = try fixture.rawConnect("node1:22", headers: ["Proxy-Authorization: Bearer \(token.jwt)"])
        XCTAssertEqual(refused.status, 503, refused.text)
        // The open session still works and finishes normally.
        session.writeToStdin(Data("hello\n".utf8))
        session.closeStdin()
        let exit = try await session.waitForExit(timeout: 20)
        XCTAssertEqual(exit, .exited(0), session.transcript)
        XCTAssertEqual(session.stdout, "got hello\n")
        // Then the agent leaves on its own, well before the grace period.
        let agentExit = try await agent.waitForExit(timeout: 10)
        XCTAssertEqual(agentExit, .exited(0), agent.transcript)
        _ = try await fixture.waitForState("node1", "offline", timeout: 5)
    }

    func testAccessPointSIGTERMDrains() async throws {
        fixture = try TunnelFixture(serveArguments: ["--shutdown-grace", "20s"])
        try await fixture.start()
        try await fixture.addExecutor("node1")
        let token = try await fixture.userToken()
        let session = try fixture.startSSH("node1", "echo started >&2; read line; echo \"got $line\"", tokenFile: token.file,
                                           captureStdin: true)
        try await session.waitForStderr(containing: "started", timeout: 30)
        fixture.serve.process.send(signal: SIGTERM)
        try await fixture.serve.process.waitForStderr(containing: "draining", timeout: 10)
        let ready = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"),
                                                ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(fixture.httpURL)/api/v1/readyz"])
        XCTAssertEqual(ready.stdoutString, "503", ready.transcript)
        let refused = try fixture.rawConnect("node1:22", headers: ["Proxy-Authorization: Bearer \(token.jwt)"])
        XCTAssertEqual(refused.status, 503, refused.text)
        session.writeToStdin(Data("bye\n".utf8))
        session.closeStdin()
        let exit = try await session.waitForExit(timeout: 20)
        XCTAssertEqual(exit, .exited(0), session.transcript)
        XCTAssertEqual(session.stdout, "got bye\n")
        let serveExit = try await fixture.serve.process.waitForExit(timeout: 10)
        XCTAssertEqual(serveExit, .exited(0), fixture.serve.process.transcript)
        // The executor heard Goodbye and keeps trying to reconnect.
        try await fixture.agents["node1"]!.waitForStderr(containing: "access point is going away", timeout: 5)
    }

    func testSecondSIGTERMCutsTheAccessPointsGraceShort() async throws {
        fixture = try TunnelFixture(serveArguments: ["--shutdown-grace", "120s"])
        try await fixture.start()
        try await fixture.addExecutor("node1")
        let token = try await fixture.userToken()
        let session = try fixture.startSSH("node1", "echo started >&2; sleep 600", tokenFile: token.file)
        try await session.waitForStderr(containing: "started", timeout: 30)
        fixture.serve.process.send(signal: SIGTERM)
        try await fixture.serve.process.waitForStderr(containing: "draining", timeout: 10)
        let second = Date()
        fixture.serve.process.send(signal: SIGTERM)
        let serveExit = try await fixture.serve.process.waitForExit(timeout: 15)
        XCTAssertLessThan(Date().timeIntervalSince(second), 5, "the second signal must not wait out the 120 s grace")
        XCTAssertEqual(serveExit, .exited(0), fixture.serve.process.transcript)
        try await fixture.serve.process.waitForStderr(containing: "closed tunnels still open at the end of the grace period", timeout: 1)
        // The cut session ends instead of hanging.
        _ = try await session.waitForExit(timeout: 30)
    }
}
