import AHTestSupport
import Foundation
import XCTest

/// Seed stage 6 against a real fleet: a follower whose direct path dies under a warm session
/// is probed, marked degraded and re-routed through its access point, with the events in
/// the leader's journal, without any command having to fail first.
final class LeaderHealthTests: XCTestCase {
    func testDeadDirectPathIsReroutedThroughTheAccessPoint() async throws {
        try Requirement.sshd()
        try Requirement.check(FileManager.default.isExecutableFile(atPath: "/usr/bin/socat"), "socat is not installed (apt-get install socat)")
        let fleet = try LeaderFixture()
        try await fleet.start(accessPointFollowers: [("h1", ["os": "linux"])])
        // The direct path is a real TCP relay in front of the follower's sshd: socat without
        // `fork` carries exactly one connection, so killing it cuts the warm session's TCP
        // stream and leaves nothing listening (the re-route's direct dial is refused).
        let relayPort = Int(try Ports.freePort(.tcp))
        let relay = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/socat"),
                                 arguments: ["-d", "-d", "TCP-LISTEN:\(relayPort),bind=127.0.0.1,reuseaddr",
                                             "TCP:127.0.0.1:\(fleet.members[0].daemon.port)"])
        try relay.start()
        defer { relay.send(signal: SIGKILL) }
        try await relay.waitForStderr(containing: "listening on", timeout: 10)
        fleet.members[0].connect = "auto"
        fleet.members[0].sshPort = relayPort
        try fleet.writeConfig(connectivity: "health_probe_interval = \"500ms\"\nfailure_threshold = 2")
        do {
            let first = try await fleet.runJSON(["--", "true"])
            XCTAssertEqual(first.result.exit, .exited(0), first.result.transcript)
            let before = try await listedPath(fleet)
            XCTAssertEqual(before?["method"] as? String, "direct", "auto tries the direct path first")

            relay.send(signal: SIGKILL)
            _ = try await relay.waitForExit(timeout: 10)

            // The service is another process and its journal is all it shows of a probe, so
            // this polls the journal (each read is cheap) until the re-route is recorded.
            let deadline = Date().addingTimeInterval(30)
            var types: [String] = []
            while Date() < deadline {
                types = try journalTypes(fleet, prefix: "connect.path.")
                if types.contains("connect.path.restored") { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            XCTAssertEqual(Array(types.suffix(3)), ["connect.path.degraded", "connect.path.fixed", "connect.path.restored"],
                           "journal: \(types)\nleader log:\n\(leaderLog(fleet))\nsshd:\n\(fleet.tunnels.daemons["h1"]!.process.stderr.suffix(3000))")
            let restored = try journalRows(fleet, type: "connect.path.restored").last
            XCTAssertEqual(restored?["method"] as? String, "access-point")
            XCTAssertEqual(restored?["host"] as? String, "h1")

            let after = try await listedPath(fleet)
            XCTAssertEqual(after?["method"] as? String, "access-point")
            let second = try await fleet.runJSON(["--", "true"])
            XCTAssertEqual(second.result.exit, .exited(0), second.result.transcript)
        } catch {
            await fleet.stop()
            throw error
        }
        await fleet.stop()
    }

    private func leaderLog(_ fleet: LeaderFixture) -> String {
        let directory = URL(fileURLWithPath: fleet.stateHome).appendingPathComponent("ah/leader")
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".log") }) ?? []
        return logs.compactMap { try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }.joined()
    }

    private func listedPath(_ fleet: LeaderFixture) async throws -> [String: Any]? {
        let list = try await fleet.followers(["list", "--json"])
        XCTAssertEqual(list.exit, .exited(0), list.transcript)
        let json = try JSONSerialization.jsonObject(with: list.stdout) as? [String: Any]
        let followers = json?["followers"] as? [[String: Any]] ?? []
        return followers.first { $0["name"] as? String == "h1" }?["path"] as? [String: Any]
    }

    private func journalTypes(_ fleet: LeaderFixture, prefix: String) throws -> [String] {
        try query(fleet, "SELECT type FROM events WHERE type LIKE '\(prefix)%' ORDER BY seq")
            .split(separator: "\n").map(String.init)
    }

    private func journalRows(_ fleet: LeaderFixture, type: String) throws -> [[String: Any]] {
        try query(fleet, "SELECT data FROM events WHERE type = '\(type)' ORDER BY seq").split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Reads the leader's journal with Python's sqlite3, independent of our own SQLite code.
    private func query(_ fleet: LeaderFixture, _ sql: String) throws -> String {
        let directory = URL(fileURLWithPath: fleet.stateHome).appendingPathComponent("ah/leader")
        let databases = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sqlite") }
        guard databases.count == 1 else { return "" }
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            for (value,) in db.execute(sys.argv[2]): print(value)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, directory.appendingPathComponent(databases[0]).path, sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
