import AHTestSupport
import Foundation
import XCTest

/// `ah agent followers run/list` against a real fleet: four followers (each a real sshd
/// behind its own `ah agent enroll`, reached through one real `ah serve`) and one reached
/// directly, through the leader service the commands start themselves.
final class LeaderFanOutTests: XCTestCase {
    var fleet: LeaderFixture!

    override func setUp() async throws {
        try Requirement.sshd()
        fleet = try LeaderFixture()
        try await fleet.start(accessPointFollowers: [("f1", ["os": "linux", "group": "a"]), ("f2", ["os": "linux", "group": "a"]),
                                                     ("f3", ["os": "linux", "group": "b"]), ("f4", ["os": "linux", "group": "b"])],
                              directFollowers: [("d1", ["os": "linux", "group": "direct"])])
    }

    override func tearDown() async throws {
        await fleet?.stop()
    }

    func testRunOnAllOnATagAndOnOneHost() async throws {
        let all = try await fleet.runJSON(["--", "sh", "-c", "echo \"hi from $AH_FOLLOWER in $(pwd)\""])
        XCTAssertEqual(all.result.exit, .exited(0), all.result.transcript)
        let hosts = LeaderFixture.hosts(all.json)
        XCTAssertEqual(Set(hosts.keys), ["f1", "f2", "f3", "f4", "d1"])
        for member in fleet.members {
            let host = try XCTUnwrap(hosts[member.name])
            XCTAssertEqual(host["status"] as? String, "passed")
            XCTAssertEqual(host["exit"] as? Int, 0)
            XCTAssertTrue(host.keys.contains("signal"), "signal is null, not absent: \(host)")
            XCTAssertEqual(host["stdout"] as? String, "hi from \(member.name) in \(member.workspace)\n")
            XCTAssertNotNil(host["durationMs"] as? Int)
        }
        let summary = try XCTUnwrap(all.json["summary"] as? [String: Any])
        XCTAssertEqual((summary["passed"] as? [String])?.count, 5)

        let tagged = try await fleet.runJSON(["--tag", "group=b", "--", "true"])
        XCTAssertEqual(Set(LeaderFixture.hosts(tagged.json).keys), ["f3", "f4"], tagged.result.transcript)
        let one = try await fleet.runJSON(["--host", "d1", "--", "true"])
        XCTAssertEqual(Set(LeaderFixture.hosts(one.json).keys), ["d1"], one.result.transcript)

        // Text mode: live lines prefixed with their host, the summary last.
        let text = try await fleet.followers(["run", "--tag", "group=a", "--", "sh", "-c", "echo out; echo err >&2"])
        XCTAssertEqual(text.exit, .exited(0), text.transcript)
        XCTAssertTrue(text.stdoutString.contains("f1: out\n") && text.stdoutString.contains("f2: out\n"), text.stdoutString)
        XCTAssertTrue(text.stderrString.contains("f1 [stderr]: err"), text.stderrString)
        XCTAssertTrue(text.stdoutString.hasSuffix("2 passed, 0 failed, 0 unreachable\n"), text.stdoutString)
    }

    func testUnknownHostAndEmptySelectionAreUsageErrors() async throws {
        let unknown = try await fleet.followers(["run", "--host", "nope", "--", "true"])
        XCTAssertEqual(unknown.exit, .exited(2), unknown.transcript)
        XCTAssertTrue(unknown.stderrString.contains("nope"), unknown.stderrString)
        let nothing = try await fleet.followers(["run", "--tag", "group=zzz", "--", "true"])
        XCTAssertEqual(nothing.exit, .exited(2), nothing.transcript)
        XCTAssertTrue(nothing.stderrString.contains("group=zzz"), nothing.stderrString)
    }

    func testOneFailingHostMakesExitOneWithTheRightSummary() async throws {
        let run = try await fleet.runJSON(["--", "sh", "-c", "[ \"$AH_FOLLOWER\" != f2 ] || exit 7"])
        XCTAssertEqual(run.result.exit, .exited(1), run.result.transcript)
        let hosts = LeaderFixture.hosts(run.json)
        XCTAssertEqual(hosts["f2"]?["status"] as? String, "failed")
        XCTAssertEqual(hosts["f2"]?["exit"] as? Int, 7)
        let summary = try XCTUnwrap(run.json["summary"] as? [String: Any])
        XCTAssertEqual(summary["failed"] as? [String], ["f2"])
        XCTAssertEqual((summary["passed"] as? [String])?.sorted(), ["d1", "f1", "f3", "f4"])
    }

    func testArgumentsArriveUnchanged() async throws {
        let words = ["a b", "$HOME", "`id`", "", "ü ✓", "*", "x'y\"z", "line1\nline2", "--flag"]
        let run = try await fleet.runJSON(["--host", "f1", "--", "printf", "[%s]\\n"] + words)
        XCTAssertEqual(run.result.exit, .exited(0), run.result.transcript)
        let expected = words.map { "[\($0)]\n" }.joined()
        XCTAssertEqual(LeaderFixture.hosts(run.json)["f1"]?["stdout"] as? String, expected)
    }

    func testSignalIsReportedByName() async throws {
        let run = try await fleet.runJSON(["--host", "f1", "--", "sh", "-c", "kill -SEGV $$"])
        XCTAssertEqual(run.result.exit, .exited(1), run.result.transcript)
        let host = try XCTUnwrap(LeaderFixture.hosts(run.json)["f1"])
        XCTAssertEqual(host["status"] as? String, "failed")
        XCTAssertEqual(host["signal"] as? String, "SIGSEGV", "\(host)")
    }

    func testTimeoutKillsTheRemoteProcessTree() async throws {
        let started = Date()
        let run = try await fleet.runJSON(["--host", "f3", "--timeout", "2s", "--", "sh", "-c", "sleep 3001 & sleep 3002; wait"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 30)
        XCTAssertEqual(run.result.exit, .exited(1), run.result.transcript)
        XCTAssertEqual(LeaderFixture.hosts(run.json)["f3"]?["status"] as? String, "timeout")
        // The follower is this machine: nothing of the tree is left.
        var left = ""
        // Process exit on the follower is only observable by looking: poll pgrep.
        for _ in 0..<50 {
            left = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/pgrep"), ["-f", "sleep 300[12]"]).stdoutString
            if left.isEmpty { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertEqual(left, "", "processes of the timed-out command are still running")
    }

    func testExecutorKilledMidRunIsUnreachableWhileTheOthersFinish() async throws {
        let run = Task { try await self.fleet.runJSON(["--", "sh", "-c", "echo started; sleep 4; echo done"]) }
        // Wait until every follower runs the command, then kill f4's executor (its tunnel dies).
        // The CLI run is a separate process with no progress we can await; the command
        // sleeps 4 s, so 2 s in is safely mid-run.
        try await Task.sleep(nanoseconds: 2_000_000_000)
        fleet.tunnels.agents["f4"]!.send(signal: SIGKILL)
        let (result, json) = try await run.value
        XCTAssertEqual(result.exit, .exited(3), result.transcript)
        let hosts = LeaderFixture.hosts(json)
        XCTAssertEqual(hosts["f4"]?["status"] as? String, "unreachable", "\(hosts["f4"] ?? [:])")
        for name in ["f1", "f2", "f3", "d1"] {
            XCTAssertEqual(hosts[name]?["status"] as? String, "passed", name)
            XCTAssertEqual(hosts[name]?["stdout"] as? String, "started\ndone\n", name)
        }
    }

    func testSecondRunReusesSessionsAndHelpers() async throws {
        let first = try await fleet.followers(["run", "--", "true"])
        XCTAssertEqual(first.exit, .exited(0), first.transcript)
        let logins = fleet.members.map { fleet.acceptedLogins($0.name) }
        XCTAssertEqual(logins, Array(repeating: 1, count: fleet.members.count), "one session per follower")
        let second = try await fleet.followers(["run", "--", "true"])
        XCTAssertEqual(second.exit, .exited(0), second.transcript)
        XCTAssertEqual(fleet.members.map { fleet.acceptedLogins($0.name) }, logins, "the second run opened no new SSH session")
    }

    func testListShowsPathsAndHealth() async throws {
        let list = try await fleet.followers(["list", "--json"])
        XCTAssertEqual(list.exit, .exited(0), list.transcript)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: list.stdout) as? [String: Any])
        let followers = try XCTUnwrap(json["followers"] as? [[String: Any]])
        XCTAssertEqual(followers.count, 5)
        for follower in followers {
            XCTAssertEqual(follower["health"] as? String, "ok", "\(follower)")
            let path = try XCTUnwrap(follower["path"] as? [String: Any], "\(follower)")
            XCTAssertEqual(path["method"] as? String, follower["name"] as? String == "d1" ? "direct" : "access-point")
            XCTAssertNotNil(path["rttMs"] as? Double)
            XCTAssertEqual(follower["os"] as? String, "linux")
        }
    }

    func testHostKeyMismatchIsRefusedNamingBothFingerprints() async throws {
        // d1's known_hosts now holds another key.
        let other = try await SSHDaemon.start(in: fleet.directory.file("sshd-other"))
        defer { Task { await other.stop() } }
        let key = other.hostKeyPublic.split(separator: " ")
        try "[127.0.0.1]:\(fleet.members.last!.daemon.port) \(key[0]) \(key[1])\n"
            .write(toFile: fleet.members.last!.knownHosts!, atomically: true, encoding: .utf8)
        let run = try await fleet.runJSON(["--host", "d1", "--", "true"])
        XCTAssertEqual(run.result.exit, .exited(3), run.result.transcript)
        let error = LeaderFixture.hosts(run.json)["d1"]?["error"] as? String ?? ""
        XCTAssertTrue(error.contains("SHA256:"), error)
        XCTAssertEqual(fleet.acceptedLogins("d1"), 0, "no authentication to a host with the wrong key")
    }

    func testShardingRunsEachCommandOncePerOSWithConcurrencyRespected() async throws {
        // f4 says it is macOS: one "macos" follower, three "linux" ones.
        fleet.members[3].os = "macos"
        fleet.members[3].tags["os"] = "macos"
        fleet.members.removeLast()  // d1 out
        try fleet.writeConfig()
        var arguments: [String] = []
        for index in 0..<7 {
            arguments += ["--command", "echo \"$AH_SHARD_INDEX/$AH_SHARD_COUNT $(date +%s%N)\"; sleep 0.3; echo \"end $(date +%s%N)\" # \(index)"]
        }
        let run = try await fleet.runJSON(arguments, timeout: 180)
        XCTAssertEqual(run.result.exit, .exited(0), run.result.transcript)
        let commands = try XCTUnwrap(run.json["commands"] as? [[String: Any]])
        XCTAssertEqual(commands.count, 14, "7 commands × 2 OSes")
        for os in ["linux", "macos"] {
            let mine = commands.filter { $0["os"] as? String == os }
            XCTAssertEqual(Set(mine.compactMap { $0["shardIndex"] as? Int }), Set(0..<7), os)
        }
        XCTAssertEqual(Set(commands.filter { $0["os"] as? String == "macos" }.compactMap { $0["host"] as? String }), ["f4"])
        XCTAssertEqual(Set(commands.filter { $0["os"] as? String == "linux" }.compactMap { $0["host"] as? String }), ["f1", "f2", "f3"])
        // Concurrency 1: on each host, no two commands overlap in time.
        for host in ["f1", "f2", "f3", "f4"] {
            let spans = commands.filter { $0["host"] as? String == host }.compactMap { command -> (Int, Int)? in
                let words = (command["stdout"] as? String ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" })
                guard words.count >= 4, let start = Int(words[1]), let end = Int(words[3]) else { return nil }
                return (start, end)
            }.sorted { $0.0 < $1.0 }
            for (earlier, later) in zip(spans, spans.dropFirst()) {
                XCTAssertLessThanOrEqual(earlier.1, later.0, "\(host) ran two commands at once")
            }
        }
    }

    func testServiceRestartsCleanlyAfterBeingKilled() async throws {
        let first = try await fleet.followers(["run", "--host", "f1", "--", "true"])
        XCTAssertEqual(first.exit, .exited(0), first.transcript)
        let pids = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/pgrep"), ["-f", "followers daemon --fleet-config \(fleet.configPath)"])
        let pid = try XCTUnwrap(Int32(pids.stdoutString.split(separator: "\n").first ?? ""), pids.transcript)
        kill(pid, SIGKILL)
        let second = try await fleet.followers(["run", "--host", "f1", "--", "echo", "again"])
        XCTAssertEqual(second.exit, .exited(0), second.transcript)
        XCTAssertTrue(second.stdoutString.contains("f1: again"), second.stdoutString)
    }
}
