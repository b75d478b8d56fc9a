import AHTestSupport
import Foundation
import XCTest

/// An executor started before its sshd listens reports no host keys at first; once sshd is up,
/// the agent's re-scan finds the keys and reports them in a `facts` update, and the access
/// point lists them (what `ah ssh-config` pins), with no agent restart.
final class HostKeyRescanTests: XCTestCase {
    var fixture: TunnelFixture!

    override func setUp() async throws {
        try Requirement.sshd()
    }

    override func tearDown() async throws {
        await fixture?.stop()
    }

    func testHostKeysOfAnSSHDStartedAfterTheAgentAreListed() async throws {
        fixture = try TunnelFixture()
        try await fixture.start()
        // Reserve sshd's port first, so the agent's --ssh-dst names it before anything listens.
        let port = Int(try Ports.freePort(.tcp))
        let token = try await tokenCreate(fixture.serve)
        let agent = try await startAgent([
            "--remote-server", fixture.serve.remote, "--state-dir", fixture.directory.file("agent-late").path,
            "--name", "late", "--token", token, "--ca-pin", fixture.serve.pin,
            "--ssh-dst", "127.0.0.1:\(port)", "--heartbeat-interval", "1s", "--host-key-rescan-interval", "1s",
        ])
        fixture.agents["late"] = agent
        let before = try await fixture.executor("late")?["facts"] as? [String: Any]
        XCTAssertEqual((before?["sshHostKeys"] as? [Any])?.count, 0, "no sshd yet, so no keys: \(String(describing: before))")

        let sshd = try await SSHDaemon.start(in: fixture.directory.file("sshd-late"), port: port)
        fixture.daemons["late"] = sshd
        // The agent says when its re-scan found new keys (an event, awaited) ...
        try await agent.waitForStderr(containing: "sshd host keys changed; reporting them", timeout: 20)
        // ... but the access point stores the facts update on its own time and has no push API
        // for it, so the listing is polled (with a deadline) until the key shows up.
        let expected = String(sshd.hostKeyPublic.split(separator: " ")[1])
        let deadline = Date().addingTimeInterval(10)
        var listed: [String] = []
        while Date() < deadline {
            let facts = try await fixture.executor("late")?["facts"] as? [String: Any]
            listed = (facts?["sshHostKeys"] as? [[String: Any]] ?? []).compactMap { $0["publicKey"] as? String }
            if listed.contains(expected) { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertEqual(listed, [expected], "the late sshd's host key is not listed")
        let state = try await fixture.executor("late")?["state"] as? String
        XCTAssertEqual(state, "connected")
    }
}
