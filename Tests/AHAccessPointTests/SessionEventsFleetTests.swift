import AHTestSupport
import Foundation
import XCTest

/// From `ah agent followers sync-fence` and `run` on a real fleet (three followers, each a
/// real sshd behind its own `ah agent enroll`, all through one `ah serve`; the leader's own
/// executor enrolled and named by `agent_state_dir`) to SSE read by curl.
final class SessionEventsFleetTests: XCTestCase {
    func testAFenceAndARunOnThreeFollowersShowUpInTheSessionEventStream() async throws {
        try Requirement.sshd()
        let fleet = try LeaderFixture()
        do {
            try await fenceRunAndRead(fleet)
        } catch {
            await fleet.stop()
            throw error
        }
        await fleet.stop()
    }

    private func fenceRunAndRead(_ fleet: LeaderFixture) async throws {
        let names = ["f1", "f2", "f3"]
        try await fleet.start(accessPointFollowers: names.map { ($0, ["os": "linux"]) })
        try await fleet.tunnels.addExecutor("leader")
        let workspace = fleet.directory.file("leader-ws")
        try FileManager.default.createDirectory(at: workspace.appendingPathComponent("tests"), withIntermediateDirectories: true)
        try Data("echo hello\n".utf8).write(to: workspace.appendingPathComponent("tests/run.sh"))
        try fleet.writeConfig(extraFleet: "agent_state_dir = \"\(fleet.directory.file("agent-leader").path)\"")
        try appendLeaderMember(workspace: workspace.path, to: fleet.configPath)

        let fence = try await fleet.followers(["sync-fence", "--json"])
        XCTAssertEqual(fence.exit, .exited(0), fence.transcript)
        let snapshot = try XCTUnwrap((try JSONSerialization.jsonObject(with: fence.stdout) as? [String: Any])?["snapshotId"] as? String,
                                     fence.transcript)
        // The run fences again (nothing changed: the same snapshot), then runs the script the fence brought.
        let run = try await fleet.runJSON(["--", "sh", "-c", "sh tests/run.sh; echo oops >&2"])
        XCTAssertEqual(run.result.exit, .exited(0), run.result.transcript)
        let sessionCommand = try await fleet.followers(["session", "--json"])
        let session = try XCTUnwrap((try JSONSerialization.jsonObject(with: sessionCommand.stdout) as? [String: Any])?["id"] as? String,
                                    sessionCommand.transcript)

        let viewer = try await fleet.tunnels.userToken("watcher", role: "viewer").jwt
        let events = SessionEventsFixtureClient(base: fleet.tunnels.httpURL, token: viewer)
        // The uplink delivers asynchronously after the run answered: wait for its summary.
        let last = try await events.waitForType("summary", session: session)

        let curl = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/curl"),
                                arguments: ["-sN", "-H", "Authorization: Bearer \(viewer)",
                                            "\(fleet.tunnels.httpURL)/api/v1/sessions/\(session)/events"])
        try curl.start()
        _ = try await curl.waitForLine(withPrefix: "id: \(last)", timeout: 30)
        var blocks = SSEBlock.parse(curl.stdout)
        // curl's output is a pipe we can only read, not subscribe to per block: the `data:`
        // line after the awaited `id:` line is read again at a short interval until it is in.
        for _ in 0..<500 where blocks.last?.id != last {
            try await Task.sleep(for: .milliseconds(10))
            blocks = SSEBlock.parse(curl.stdout)
        }
        _ = await curl.terminate(grace: 1)
        XCTAssertEqual(blocks.map(\.id), Array(1...last), "gap-free seq from 1")
        let types = blocks.map(\.event)
        XCTAssertEqual(types.first, "followersCatalog", "\(types)")
        XCTAssertEqual(types.last, "summary", "\(types)")
        for block in blocks { XCTAssertEqual(block.data["seq"] as? Int, Int(block.id), "data.seq is the SSE id") }
        func indices(_ type: String, _ match: (SSEBlock) -> Bool = { _ in true }) -> [Int] {
            blocks.indices.filter { blocks[$0].event == type && match(blocks[$0]) }
        }

        // Two fences (sync-fence, then run's own), each: moment (no snapshot), fenceStarted,
        // fenceResult, moment (with the snapshot), in that order, all on the one snapshot.
        let moments = indices("moment"), started = indices("fenceStarted"), results = indices("fenceResult")
        XCTAssertEqual(moments.count, 4, "\(types)")
        XCTAssertEqual(started.count, 2, "\(types)")
        XCTAssertEqual(results.count, 2, "\(types)")
        for fence in 0..<min(2, started.count, results.count, moments.count / 2) {
            let before = blocks[moments[2 * fence]], after = blocks[moments[2 * fence + 1]]
            XCTAssertTrue(moments[2 * fence] < started[fence] && started[fence] < results[fence] && results[fence] < moments[2 * fence + 1],
                          "fence \(fence + 1): \(types)")
            XCTAssertTrue(before.data["snapshotId"] is NSNull, "\(before.data)")
            XCTAssertEqual(before.data["label"] as? String, "before fence")
            XCTAssertEqual(after.data["snapshotId"] as? String, snapshot)
            XCTAssertEqual(after.data["label"] as? String, "after fence (3/3 consistent)")
            XCTAssertEqual(blocks[started[fence]].data["snapshotId"] as? String, snapshot)
            XCTAssertEqual((blocks[started[fence]].data["hosts"] as? [String])?.sorted(), names)
            let hosts = blocks[results[fence]].data["hosts"] as? [String: [String: Any]] ?? [:]
            XCTAssertEqual(blocks[results[fence]].data["snapshotId"] as? String, snapshot)
            XCTAssertEqual(hosts.keys.sorted(), names, "\(blocks[results[fence]].data)")
            for (name, host) in hosts {
                XCTAssertEqual(host["state"] as? String, "consistent", name)
                XCTAssertNotNil(host["tookMs"] as? Int, name)
            }
        }
        let catalogue = try XCTUnwrap(indices("followersCatalog").first)
        for name in names {
            let fixed = indices("connect.path.fixed") { $0.data["host"] as? String == name }
            let hostStarted = indices("hostStarted") { $0.data["host"] as? String == name }
            let log = indices("hostLog") { $0.data["host"] as? String == name && $0.data["stream"] as? String == "stdout" }
            let errors = indices("hostLog") { $0.data["host"] as? String == name && $0.data["stream"] as? String == "stderr" }
            let exited = indices("hostExited") { $0.data["host"] as? String == name }
            XCTAssertEqual(fixed.count, 1, "\(name): \(types)")
            XCTAssertEqual(hostStarted.count, 1, "\(name): \(types)")
            XCTAssertEqual(exited.count, 1, "\(name): \(types)")
            guard let fixedAt = fixed.first, let startedAt = hostStarted.first, let exitedAt = exited.first,
                  let logAt = log.first, let errorAt = errors.first, let runFence = results.last else { continue }
            XCTAssertEqual(log.map { blocks[$0].data["text"] as? String }, ["hello\n"], name)
            // Catalogue, then the path (fixed while the first fence reached the follower), then
            // that fence's result; the run starts after its own fence: start, output, exit.
            XCTAssertTrue(catalogue < fixedAt && fixedAt < results[0], "\(name): \(types)")
            XCTAssertTrue(runFence < startedAt && startedAt < logAt && logAt < exitedAt && errorAt < exitedAt, "\(name): \(types)")
            XCTAssertEqual(blocks[exitedAt].data["status"] as? String, "passed", name)
        }
        XCTAssertEqual((blocks.last?.data["passed"] as? [String])?.sorted(), names)

        let sessions = try await events.json("/api/v1/sessions")
        let row = (sessions["items"] as? [[String: Any]])?.first { $0["id"] as? String == session }
        XCTAssertEqual(row?["leader"] as? String, "leader")
        let info = try await events.json("/api/v1/sessions/\(session)/info")
        let followers = info["followers"] as? [[String: Any]] ?? []
        XCTAssertEqual(followers.compactMap { $0["name"] as? String }.sorted(), names)
        for follower in followers {
            XCTAssertEqual(follower["health"] as? String, "ok", "\(follower)")
            XCTAssertEqual(follower["os"] as? String, "linux", "\(follower)")
            XCTAssertEqual((follower["path"] as? [String: Any])?["method"] as? String, "access-point", "\(follower)")
        }
        let endpoints = info["endpoints"] as? [String: String]
        XCTAssertEqual(endpoints?["events"], "/api/v1/sessions/\(session)/events")
        let lastFence = info["lastFence"] as? [String: Any]
        XCTAssertEqual(lastFence?["seq"] as? Int, results.last.map { Int(blocks[$0].id) }, "info's lastFence is the run's fence")
    }

    /// Appends the leader member (the workspace the fences snapshot) to the fleet config.
    private func appendLeaderMember(workspace: String, to configPath: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: configPath))
        handle.seekToEndOfFile()
        handle.write(Data("""

            [[fleet.members]]
            name = "leader"
            role = "leader"
            workspace = "\(workspace)"

            """.utf8))
        try handle.close()
    }
}

extension SessionEventsFleetTests {
    /// The leader service is killed (SIGKILL) while events it journaled have not reached the
    /// access point (killed too, so nothing is in flight to it; the follower is reached
    /// directly, so the run itself goes on). The access point comes back, and the next
    /// service delivers them: the earlier session arrives whole.
    func testEventsJournaledByAKilledLeaderServiceArriveAfterItsRestart() async throws {
        try Requirement.sshd()
        let fleet = try LeaderFixture()
        do {
            try await killAndRestart(fleet)
        } catch {
            await fleet.stop()
            throw error
        }
        await fleet.stop()
    }

    private func killAndRestart(_ fleet: LeaderFixture) async throws {
        try await fleet.start(accessPointFollowers: [], directFollowers: [("d1", ["os": "linux"])])
        try await fleet.tunnels.addExecutor("leader")
        try fleet.writeConfig(extraFleet: "agent_state_dir = \"\(fleet.directory.file("agent-leader").path)\"")
        let viewer = try await fleet.tunnels.userToken("watcher", role: "viewer").jwt
        var events = SessionEventsFixtureClient(base: fleet.tunnels.httpURL, token: viewer)

        let warm = try await fleet.runJSON(["--", "echo", "warm"])
        XCTAssertEqual(warm.result.exit, .exited(0), warm.result.transcript)
        let sessionCommand = try await fleet.followers(["session", "--json"])
        let session = try XCTUnwrap((try JSONSerialization.jsonObject(with: sessionCommand.stdout) as? [String: Any])?["id"] as? String)
        _ = try await events.waitForType("summary", session: session)

        let serve = try XCTUnwrap(fleet.tunnels.serve)
        serve.process.send(signal: SIGKILL)
        _ = try await serve.process.waitForExit(timeout: 10)
        let during = try await fleet.runJSON(["--", "echo", "during"])
        XCTAssertEqual(during.result.exit, .exited(0), during.result.transcript)
        // The service this test's commands started (its command line names this test's
        // temporary directory, which no other process does).
        let unique = fleet.directory.file("fleet.toml").deletingLastPathComponent().lastPathComponent
        let pids = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/pgrep"),
                                               ["-f", "followers daemon --fleet-config .*\(unique)"], timeout: 10)
        let daemon = try XCTUnwrap(pids.stdoutString.split(separator: "\n").first.flatMap { Int32($0) }, pids.transcript)
        kill(daemon, SIGKILL)
        fleet.tunnels.serve = try await ServeProcess.start(dataDir: serve.dataDir, quicPort: serve.quicPort)
        events = SessionEventsFixtureClient(base: fleet.tunnels.httpURL, token: viewer)

        // A new service (a new session) sends the killed one's undelivered events first.
        let after = try await fleet.runJSON(["--", "echo", "after"])
        XCTAssertEqual(after.result.exit, .exited(0), after.result.transcript)
        let page = try await waitForText("during\n", session: session, events: events)
        let seqs = page.compactMap { $0["seq"] as? Int }
        XCTAssertEqual(seqs, Array(1...seqs.count), "the killed service's session arrives gap-free")
        XCTAssertEqual(page.last?["type"] as? String, "summary", "up to its last journaled event")
    }

    /// Every event of the session once one carries `text`.
    private func waitForText(_ text: String, session: String, events: SessionEventsFixtureClient) async throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let page = try await events.json("/api/v1/sessions/\(session)/events?limit=1000")
            let items = page["items"] as? [[String: Any]] ?? []
            if items.contains(where: { $0["text"] as? String == text }) { return items }
            // Delivery after the restart publishes nothing the test could await from outside.
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProcessError.timedOut(what: "an event with text \(text.debugDescription) in session \(session)", seconds: 60, transcript: "")
    }
}

/// REST reads with curl for tests that have no `SessionEventsFixture`.
struct SessionEventsFixtureClient {
    let base: String
    let token: String

    func json(_ path: String) async throws -> [String: Any] {
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"),
                                                 ["-sf", "-H", "Authorization: Bearer \(token)", "-H", "Accept: application/json", base + path],
                                                 timeout: 30)
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        return (try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
    }

    /// The seq of the session's first event of `type`, once the access point has it.
    func waitForType(_ type: String, session: String, timeout: Double = 60) async throws -> Int64 {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let result = try await ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/curl"),
                ["-s", "-H", "Authorization: Bearer \(token)", "-H", "Accept: application/json",
                 "\(base)/api/v1/sessions/\(session)/events?type=\(type)&limit=1"], timeout: 30)
            let page = (try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
            if let seq = (page["items"] as? [[String: Any]])?.first?["seq"] as? Int { return Int64(seq) }
            // Delivery is asynchronous and publishes nothing the test could await from outside.
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ProcessError.timedOut(what: "a \(type) event of session \(session) at the access point", seconds: timeout, transcript: "")
    }
}
