import AHTestSupport
import Foundation
import XCTest

/// `ah agent followers sync-fence` (and `run`'s fence, moments, seek) against a real fleet:
/// three followers, each a real sshd behind its own `ah agent enroll`, reached through a
/// real `ah serve`; one is declared `os = "macos"`. Follower trees are checked with an
/// independent walk (Python: os.walk + hashlib, which also computes the documented snapshot
/// id on its own), never with our manifest. One fleet serves the whole sequence.
final class LeaderSyncFenceTests: XCTestCase {
    var fleet: LeaderFixture!
    var leaderWorkspace: String { fleet.directory.file("leader-ws").path }

    override func setUp() async throws {
        try Requirement.sshd()
        fleet = try LeaderFixture()
        try await fleet.start(accessPointFollowers: [("f1", ["os": "linux"]), ("f2", ["os": "linux"]), ("mac", ["os": "macos"])])
        try FileManager.default.createDirectory(atPath: leaderWorkspace, withIntermediateDirectories: true)
        try fleet.writeConfig(extraFleet: """
            [fleet.sync]
            ignores = ["node_modules", "*.log"]
            timeout = "30s"
            """)
        let leader = """

            [[fleet.members]]
            name = "leader"
            role = "leader"
            workspace = "\(leaderWorkspace)"

            """
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: fleet.configPath))
        handle.seekToEndOfFile()
        handle.write(Data(leader.utf8))
        try handle.close()
    }

    override func tearDown() async throws {
        await fleet?.stop()
    }

    // MARK: helpers

    func put(_ path: String, _ text: String, mode: Int = 0o644) throws {
        let url = URL(fileURLWithPath: leaderWorkspace).appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
        chmod(url.path, mode_t(mode))
    }

    func remove(_ path: String) throws { try FileManager.default.removeItem(atPath: leaderWorkspace + "/" + path) }

    func fence(_ extra: [String] = []) async throws -> (result: ProcessResult, json: [String: Any], hosts: [String: [String: Any]]) {
        let result = try await fleet.followers(["sync-fence", "--json"] + extra)
        let json = (try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
        return (result, json, LeaderFixture.hosts(json))
    }

    static let walker = """
        import hashlib, json, os, stat, sys
        root = sys.argv[1]
        entries = []
        for directory, dirs, files in os.walk(root):
            rel = os.path.relpath(directory, root)
            rel = "" if rel == "." else rel
            dirs[:] = [d for d in dirs if d not in (".git", "node_modules") and not os.path.islink(os.path.join(directory, d))]
            names = files + [d for d in os.listdir(directory) if os.path.islink(os.path.join(directory, d)) and d not in files]
            for d in dirs:
                entries.append((os.path.join(rel, d), "D", None))
            for name in set(names):
                if name.endswith(".log") or name in (".git", "node_modules"):
                    continue
                path = os.path.join(directory, name)
                info = os.lstat(path)
                relpath = os.path.join(rel, name)
                if stat.S_ISLNK(info.st_mode):
                    entries.append((relpath, "L", os.readlink(path)))
                elif stat.S_ISREG(info.st_mode):
                    data = open(path, "rb").read()
                    entries.append((relpath, "F", ("x" if info.st_mode & 0o111 else "-", len(data), hashlib.sha256(data).hexdigest(),
                                                   oct(info.st_mode & 0o777))))
        entries.sort(key=lambda e: e[0].encode())
        blob = b""
        for path, kind, extra in entries:
            if kind == "D":
                blob += b"D\\0" + path.encode() + b"\\0"
            elif kind == "L":
                blob += b"L\\0" + path.encode() + b"\\0" + extra.encode() + b"\\0"
            else:
                blob += b"F\\0" + path.encode() + b"\\0" + extra[0].encode() + b"\\0" + str(extra[1]).encode() + b"\\0" + extra[2].encode() + b"\\0"
        tree = {path: [kind, extra[:3] if kind == "F" else extra] for path, kind, extra in entries}
        print(json.dumps({"root": "sha256:" + hashlib.sha256(blob).hexdigest(), "tree": tree,
                          "modes": {path: extra[3] for path, kind, extra in entries if kind == "F"}}))
        """

    /// The independent walk: {"root": snapshot id per the documented encoding, "tree": {...}, "modes": {...}}.
    func walk(_ directory: String) async throws -> [String: Any] {
        let script = fleet.directory.file("walk.py").path
        if !FileManager.default.fileExists(atPath: script) { try Self.walker.write(toFile: script, atomically: true, encoding: .utf8) }
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script, directory], timeout: 60)
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        return (try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
    }

    /// Every named follower's tree equals the leader's (content, type, exec bit, link target)
    /// and hashes to `snapshotId` by the independent walk; files are 0644/0755 on followers.
    func assertFollowersMatchLeader(_ names: [String], snapshotId: String?, file: StaticString = #filePath, line: UInt = #line) async throws {
        let leader = try await walk(leaderWorkspace)
        if let snapshotId { XCTAssertEqual(leader["root"] as? String, snapshotId, "leader walk vs snapshot id", file: file, line: line) }
        for name in names {
            let member = try XCTUnwrap(fleet.members.first { $0.name == name })
            let follower = try await walk(member.workspace)
            XCTAssertEqual(follower["root"] as? String, leader["root"] as? String, "\(name)'s tree", file: file, line: line)
            XCTAssertEqual(NSDictionary(dictionary: follower["tree"] as? [String: Any] ?? [:]),
                           NSDictionary(dictionary: leader["tree"] as? [String: Any] ?? [:]), "\(name)'s entries", file: file, line: line)
            for (path, mode) in follower["modes"] as? [String: String] ?? [:] {
                XCTAssertTrue(mode == "0o644" || mode == "0o755", "\(name): \(path) has mode \(mode)", file: file, line: line)
            }
        }
    }

    func workspace(_ name: String) -> String { fleet.members.first { $0.name == name }!.workspace }

    /// Processes below `pid` (children, grandchildren, …), from /proc.
    func descendants(of pid: Int32) -> [Int32] {
        var parents: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { parents[parent, default: []].append(child) }
        }
        var found: [Int32] = []
        var queue = [pid]
        while let next = queue.popLast() {
            for child in parents[next] ?? [] {
                found.append(child)
                queue.append(child)
            }
        }
        return found
    }

    func helperPIDs(of name: String) -> [Int32] {
        descendants(of: fleet.tunnels.daemons[name]!.process.processIdentifier).filter { pid in
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return command.contains("follower-helper")
        }
    }

    // MARK: the sequence

    func testFenceSyncsEveryChangeProvesItAndBoundsFailures() async throws {
        // 1. A first tree: files, an executable, a symlink, an empty directory, ignored paths.
        try put("README.md", "hello\n")
        try put("src/main.c", "int main(void) { return 0; }\n")
        try put("bin/run.sh", "#!/bin/sh\necho run\n", mode: 0o755)
        try FileManager.default.createDirectory(atPath: leaderWorkspace + "/empty", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: leaderWorkspace + "/link", withDestinationPath: "src/main.c")
        try put("node_modules/big/index.js", "ignored\n")
        try put("debug.log", "ignored\n")
        try put(".git/HEAD", "ref: refs/heads/main\n")
        // A follower's own ignored content is left alone.
        try FileManager.default.createDirectory(atPath: workspace("f1") + "/node_modules", withIntermediateDirectories: true)
        try Data("local".utf8).write(to: URL(fileURLWithPath: workspace("f1") + "/node_modules/local.js"))

        var fenced = try await fence()
        XCTAssertEqual(fenced.result.exit, .exited(0), fenced.result.transcript)
        let first = try XCTUnwrap(fenced.json["snapshotId"] as? String)
        XCTAssertTrue(first.hasPrefix("sha256:") && first.count == 71, first)
        for name in ["f1", "f2", "mac"] {
            let host = try XCTUnwrap(fenced.hosts[name], fenced.result.transcript)
            XCTAssertEqual(host["state"] as? String, "consistent", "\(host)")
            XCTAssertEqual(host["rootHash"] as? String, first)
            XCTAssertNotNil(host["tookMs"] as? Int)
            XCTAssertTrue(host.keys.contains("error"), "error is null, not absent: \(host)")
        }
        try await assertFollowersMatchLeader(["f1", "f2", "mac"], snapshotId: first)
        XCTAssertTrue(FileManager.default.fileExists(atPath: workspace("f1") + "/node_modules/local.js"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace("f2") + "/node_modules"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace("f2") + "/.git"))

        // Nothing changed: the same snapshot, consistent at once.
        fenced = try await fence()
        XCTAssertEqual(fenced.json["snapshotId"] as? String, first, fenced.result.transcript)

        // 2. Edit, delete, chmod +x, rename, new symlink, a file replaced by a directory.
        try put("README.md", "hello again\n")
        try remove("src/main.c")
        try put("src/lib.c", "int lib;\n")
        chmod(leaderWorkspace + "/README.md", 0o755)
        try FileManager.default.moveItem(atPath: leaderWorkspace + "/bin/run.sh", toPath: leaderWorkspace + "/bin/start.sh")
        try remove("link")
        try FileManager.default.createSymbolicLink(atPath: leaderWorkspace + "/link", withDestinationPath: "bin/start.sh")
        try remove("empty")
        try put("empty/now-a-file-inside", "x")
        try put("swap", "a file")
        fenced = try await fence()
        XCTAssertEqual(fenced.result.exit, .exited(0), fenced.result.transcript)
        try await assertFollowersMatchLeader(["f1", "f2", "mac"], snapshotId: fenced.json["snapshotId"] as? String)
        try remove("swap")
        try put("swap/inner.txt", "now a directory")
        fenced = try await fence()
        XCTAssertEqual(fenced.result.exit, .exited(0), fenced.result.transcript)
        try await assertFollowersMatchLeader(["f1", "f2", "mac"], snapshotId: fenced.json["snapshotId"] as? String)
        try remove("swap")
        try put("swap", "a file again")
        fenced = try await fence(["--host", "f1", "--host", "f2"])
        XCTAssertEqual(Set(fenced.hosts.keys), ["f1", "f2"], fenced.result.transcript)
        try await assertFollowersMatchLeader(["f1", "f2"], snapshotId: fenced.json["snapshotId"] as? String)

        // 3. Followers changed behind the leader's back are repaired.
        try Data("tampered".utf8).write(to: URL(fileURLWithPath: workspace("f1") + "/README.md"))
        try FileManager.default.removeItem(atPath: workspace("f2") + "/src/lib.c")
        try Data("extra".utf8).write(to: URL(fileURLWithPath: workspace("f2") + "/stray.txt"))
        fenced = try await fence()
        XCTAssertEqual(fenced.result.exit, .exited(0), fenced.result.transcript)
        try await assertFollowersMatchLeader(["f1", "f2", "mac"], snapshotId: fenced.json["snapshotId"] as? String)

        // 4. A symlink escaping the workspace is refused by every follower (exit 1, named).
        try FileManager.default.createSymbolicLink(atPath: leaderWorkspace + "/escape", withDestinationPath: "../../etc")
        fenced = try await fence()
        XCTAssertEqual(fenced.result.exit, .exited(1), fenced.result.transcript)
        for name in ["f1", "f2", "mac"] {
            XCTAssertEqual(fenced.hosts[name]?["state"] as? String, "error")
            XCTAssertTrue((fenced.hosts[name]?["error"] as? String ?? "").contains("points outside"), "\(fenced.hosts[name] ?? [:])")
        }
        XCTAssertTrue(fenced.result.stderrString.contains("f1 (error)"), fenced.result.stderrString)
        XCTAssertTrue(fenced.result.stderrString.contains("narrow the selection"), fenced.result.stderrString)
        try remove("escape")

        // 5. Names that collide case-insensitively: refused for the macOS member, naming both.
        try put("Notes.txt", "upper")
        try put("notes.txt", "lower")
        fenced = try await fence()
        XCTAssertEqual(fenced.result.exit, .exited(1), fenced.result.transcript)
        XCTAssertEqual(fenced.hosts["f1"]?["state"] as? String, "consistent")
        XCTAssertEqual(fenced.hosts["mac"]?["state"] as? String, "error")
        let collision = fenced.hosts["mac"]?["error"] as? String ?? ""
        XCTAssertTrue(collision.contains("Notes.txt") && collision.contains("notes.txt"), collision)
        try remove("Notes.txt")

        // 6. `run` fences first; `--no-fence` does not.
        try put("version.txt", "v2")
        let ran = try await fleet.runJSON(["--", "cat", "version.txt"])
        XCTAssertEqual(ran.result.exit, .exited(0), ran.result.transcript)
        for name in ["f1", "f2", "mac"] { XCTAssertEqual(LeaderFixture.hosts(ran.json)[name]?["stdout"] as? String, "v2") }
        try put("version.txt", "v3")
        let unfenced = try await fleet.runJSON(["--no-fence", "--host", "f1", "--", "cat", "version.txt"])
        XCTAssertEqual(LeaderFixture.hosts(unfenced.json)["f1"]?["stdout"] as? String, "v2", unfenced.result.transcript)

        // 7. Edits racing with the fence: the snapshot reported is the one every follower holds
        // (the followers' trees hash to it by the independent walk).
        let writer = ChildProcess(executable: URL(fileURLWithPath: "/bin/sh"),
                                  arguments: ["-c", "i=0; while [ $i -lt 400 ]; do echo $i > \(leaderWorkspace)/racing.txt; i=$((i+1)); done"])
        try writer.start()
        fenced = try await fence()
        _ = try await writer.waitForExit(timeout: 60)
        XCTAssertEqual(fenced.result.exit, .exited(0), fenced.result.transcript)
        let raced = try XCTUnwrap(fenced.json["snapshotId"] as? String)
        for name in ["f1", "f2", "mac"] {
            XCTAssertEqual(fenced.hosts[name]?["rootHash"] as? String, raced)
            let walked = try await walk(workspace(name))
            XCTAssertEqual(walked["root"] as? String, raced, "\(name) holds the reported snapshot")
        }

        // 8. The helper killed between fences: the next fence reconnects and is consistent.
        let helpers = helperPIDs(of: "f1")
        XCTAssertFalse(helpers.isEmpty, "f1's follower helper was not found")
        for pid in helpers { kill(pid, SIGKILL) }
        try put("after-helper-restart.txt", "ok")
        fenced = try await fence()
        XCTAssertEqual(fenced.result.exit, .exited(0), fenced.result.transcript)
        try await assertFollowersMatchLeader(["f1", "f2", "mac"], snapshotId: fenced.json["snapshotId"] as? String)

        // 9. Moments: one before and one after each fence, the latter with its snapshot; seek
        // back restores the leader workspace and the followers, and the pre-seek state is kept.
        let before = try await walk(leaderWorkspace)
        let listed = try await fleet.followers(["moments", "--json"])
        let moments = ((try? JSONSerialization.jsonObject(with: listed.stdout) as? [String: Any])?["moments"] as? [[String: Any]]) ?? []
        let target = try XCTUnwrap(moments.first { ($0["snapshotId"] as? String) == first }, listed.transcript)
        XCTAssertTrue(moments.contains { $0["snapshotId"] is NSNull }, "pre-fence moments have a null snapshotId")
        let seek = try await fleet.followers(["seek", try XCTUnwrap(target["id"] as? String), "--json"])
        XCTAssertEqual(seek.exit, .exited(0), seek.transcript)
        let sought = (try? JSONSerialization.jsonObject(with: seek.stdout) as? [String: Any]) ?? [:]
        let restored = try await walk(leaderWorkspace)
        XCTAssertEqual(restored["root"] as? String, first)
        try await assertFollowersMatchLeader(["f1", "f2"], snapshotId: first)
        let savedMoment = try XCTUnwrap(sought["savedMoment"] as? String, seek.transcript)
        let back = try await fleet.followers(["seek", savedMoment, "--json"])
        XCTAssertEqual(back.exit, .exited(0), back.transcript)
        let again = try await walk(leaderWorkspace)
        XCTAssertEqual(again["root"] as? String, before["root"] as? String, "the pre-seek state is restorable")

        // 10. A follower whose sshd and executor are killed during a fence is reported within
        // its deadline; the others become consistent.
        try put("large.bin", String(repeating: "0123456789abcdef", count: 4 << 20))
        let started = ContinuousClock.now
        let running = ChildProcess(executable: try BuiltProducts.ah(),
                                   arguments: ["agent", "followers", "sync-fence", "--json", "--timeout", "15s", "--fleet-config", fleet.configPath],
                                   environment: ["XDG_STATE_HOME": fleet.stateHome, "AH_TOKEN_FILE": ""])
        try running.start()
        // Wait until f2 is receiving (its temporary file appears), then cut it off. The fence
        // runs in other processes with no progress to await; the file on disk is polled.
        var receiving = false
        while !receiving, ContinuousClock.now - started < .seconds(30) {
            receiving = ((try? FileManager.default.contentsOfDirectory(atPath: workspace("f2"))) ?? []).contains { $0.hasPrefix(".ah-sync-tmp-") }
            if !receiving { try await Task.sleep(for: .milliseconds(5)) }
        }
        let sshd = fleet.tunnels.daemons["f2"]!.process.processIdentifier
        for pid in descendants(of: sshd) + [sshd] { kill(pid, SIGKILL) }
        fleet.tunnels.agents["f2"]?.send(signal: SIGKILL)
        let exit = try await running.waitForExit(timeout: 60)
        let took = ContinuousClock.now - started
        let output = running.stdout
        let json = (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]) ?? [:]
        let hosts = LeaderFixture.hosts(json)
        XCTAssertEqual(exit, .exited(1), output + running.stderr)
        XCTAssertTrue(["timeout", "error"].contains(hosts["f2"]?["state"] as? String ?? ""), "\(hosts["f2"] ?? [:])")
        XCTAssertEqual(hosts["f1"]?["state"] as? String, "consistent")
        XCTAssertEqual(hosts["mac"]?["state"] as? String, "consistent")
        XCTAssertLessThan(took, .seconds(25), "the fence took \(took) with a 15 s deadline")
        XCTAssertTrue(receiving, "f2 never started receiving")
    }
}
