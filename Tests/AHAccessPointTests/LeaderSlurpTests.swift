import AHTestSupport
import Crypto
import Foundation
import XCTest

/// `ah agent followers slurp` against a real fleet: two followers behind their own
/// `ah agent enroll` (reached through one real `ah serve`) and one reached directly, each a
/// real sshd running the real follower helper, through the leader service.
final class LeaderSlurpTests: XCTestCase {
    var fleet: LeaderFixture!
    var dest: URL!

    override func setUp() async throws {
        try Requirement.sshd()
        fleet = try LeaderFixture()
        try await fleet.start(accessPointFollowers: [("f1", ["os": "linux"]), ("f2", ["os": "linux"])],
                              directFollowers: [("d1", ["os": "linux"])])
        dest = fleet.directory.file("drop/artifacts")
    }

    override func tearDown() async throws {
        await fleet?.stop()
    }

    // MARK: helpers

    func workspace(_ name: String) -> URL {
        URL(fileURLWithPath: fleet.members.first { $0.name == name }!.workspace)
    }

    /// Writes `contents` at `path` in `follower`'s workspace (directories as needed).
    @discardableResult
    func put(_ follower: String, _ path: String, _ contents: String, mode: Int16 = 0o644) throws -> URL {
        let url = workspace(follower).appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        chmod(url.path, mode_t(mode))
        return url
    }

    func slurp(_ arguments: [String], environment: [String: String] = [:],
               timeout: Double = 180) async throws -> (result: ProcessResult, json: [String: Any]) {
        var env = ["XDG_STATE_HOME": fleet.stateHome, "AH_TOKEN_FILE": ""]
        env.merge(environment) { $1 }
        let result = try await ProcessRunner.run(try BuiltProducts.ah(),
                                                 ["agent", "followers", "slurp", "--fleet-config", fleet.configPath] + arguments,
                                                 environment: env, currentDirectory: fleet.directory.url, timeout: timeout)
        let json = (try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
        return (result, json)
    }

    static func sets(_ json: [String: Any]) -> [[String: Any]] { json["filesets"] as? [[String: Any]] ?? [] }

    static func hosts(_ set: [String: Any]) -> [String: [String: Any]] {
        var byName: [String: [String: Any]] = [:]
        for host in set["hosts"] as? [[String: Any]] ?? [] { byName[host["name"] as? String ?? ""] = host }
        return byName
    }

    static func sha256(_ url: URL) throws -> String {
        SHA256.hash(data: try Data(contentsOf: url)).map { String(format: "%02x", $0) }.joined()
    }

    /// Every path under `directory` (files and directories), relative, sorted.
    static func tree(_ directory: URL) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        return (enumerator.allObjects as? [String] ?? []).sorted()
    }

    /// Nothing of a staging directory is left beside the destination.
    func assertNoStagingLeft(file: StaticString = #filePath, line: UInt = #line) {
        let parent = dest.deletingLastPathComponent()
        let left = (try? FileManager.default.contentsOfDirectory(atPath: parent.path))?.filter { $0.hasPrefix(".ah-slurp-") } ?? []
        XCTAssertEqual(left, [], "staging directories left in \(parent.path)", file: file, line: line)
    }

    // MARK: tests

    func testOneAnsweringFollowerFillsDestWithVerifiedFiles() async throws {
        let app = try put("f1", "dist/app", "binary of f1\n", mode: 0o755)
        try put("f1", "dist/lib/libx.so", "library\n")
        try put("f1", "dist/app.d", "deps\n")
        try put("f1", "src/main.c", "not wanted\n")
        let old = timespec(tv_sec: 1_600_000_000, tv_nsec: 123_000_000)
        var times = [old, old]
        utimensat(AT_FDCWD, app.path, &times, 0)

        let (result, json) = try await slurp(["--fileset-data", "name=bin&include=dist/*&exclude=*.d", "--dest", dest.path, "--json"])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertEqual(Self.tree(dest), ["dist", "dist/app", "dist/lib", "dist/lib/libx.so"],
                       "exactly one follower answered: its files are in dest/, at their workspace paths")
        let sets = Self.sets(json)
        guard sets.count == 1 else { return XCTFail("one set expected: \(json)") }
        XCTAssertEqual(sets[0]["name"] as? String, "bin")
        XCTAssertEqual(sets[0]["required"] as? Bool, false)
        XCTAssertEqual(sets[0]["missing"] as? Bool, false)
        let hosts = Self.hosts(sets[0])
        XCTAssertEqual(Set(hosts.keys), ["f1"], "followers without the files do not answer")
        let files = try XCTUnwrap(hosts["f1"]?["files"] as? [[String: Any]])
        XCTAssertEqual(files.compactMap { $0["path"] as? String }, ["dist/app", "dist/lib/libx.so"])
        for file in files {
            let placed = URL(fileURLWithPath: try XCTUnwrap(file["dest"] as? String))
            XCTAssertEqual(file["sha256"] as? String, try Self.sha256(placed))
            XCTAssertEqual(file["sha256"] as? String, try Self.sha256(workspace("f1").appendingPathComponent(file["path"] as! String)))
            XCTAssertEqual(file["size"] as? Int, try Data(contentsOf: placed).count)
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: dest.appendingPathComponent("dist/app").path)
        XCTAssertEqual(attributes[.posixPermissions] as? Int, 0o755, "the mode travels")
        XCTAssertEqual((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0, 1_600_000_000.123, accuracy: 0.001,
                       "the mtime travels")
        assertNoStagingLeft()

        // Host, path, size, mtime and checksum are in the leader's state and its journal.
        let database = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: fleet.stateHome + "/ah/leader")
            .first { $0.hasSuffix(".sqlite") })
        let rows = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/sqlite3"), [
            fleet.stateHome + "/ah/leader/" + database,
            "SELECT host, path, size, mtime_ns, sha256 FROM slurped_files ORDER BY path; SELECT count(*) FROM events WHERE type = 'slurpResult';",
        ])
        XCTAssertEqual(rows.stdoutString, "f1|dist/app|13|1600000000123000000|\(try Self.sha256(app))\n"
            + "f1|dist/lib/libx.so|8|\(Self.mtimeNanos(workspace("f1").appendingPathComponent("dist/lib/libx.so")))|"
            + "\(try Self.sha256(workspace("f1").appendingPathComponent("dist/lib/libx.so")))\n1\n", rows.transcript)

        // Text mode, again into the same (now existing) destination: replaced in one step.
        try put("f1", "dist/app", "binary of f1, rebuilt\n", mode: 0o755)
        let text = try await slurp(["--fileset-data", "name=bin&include=dist/*&exclude=*.d", "--dest", dest.path])
        XCTAssertEqual(text.result.exit, .exited(0), text.result.transcript)
        XCTAssertTrue(text.result.stdoutString.contains("bin: f1: 2 files"), text.result.stdoutString)
        XCTAssertTrue(text.result.stdoutString.hasSuffix("1 file set, 2 files, 30 B, 0 missing\n"), text.result.stdoutString)
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("dist/app"), encoding: .utf8), "binary of f1, rebuilt\n")
        assertNoStagingLeft()
    }

    static func mtimeNanos(_ url: URL) -> Int64 {
        var info = stat()
        stat(url.path, &info)
        return Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }

    func testSeveralAnsweringFollowersGetPerHostDirectoriesAndDestKeepsItsFiles() async throws {
        for name in ["f1", "f2", "d1"] { try put(name, "out/report.txt", "report of \(name)\n") }
        try FileManager.default.createDirectory(at: dest, withIntermediateDirectories: true)
        try "mine\n".write(to: dest.appendingPathComponent("keep.txt"), atomically: true, encoding: .utf8)

        let (result, json) = try await slurp(["--fileset-data", "name=reports&include=out", "--dest", dest.path, "--json"])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        XCTAssertEqual(Self.tree(dest), ["keep.txt", "reports", "reports/d1", "reports/d1/out", "reports/d1/out/report.txt",
                                         "reports/f1", "reports/f1/out", "reports/f1/out/report.txt",
                                         "reports/f2", "reports/f2/out", "reports/f2/out/report.txt"])
        for name in ["f1", "f2", "d1"] {
            XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("reports/\(name)/out/report.txt"), encoding: .utf8),
                           "report of \(name)\n")
        }
        XCTAssertEqual(Set(Self.hosts((Self.sets(json).first ?? [:])).keys), ["f1", "f2", "d1"])
        assertNoStagingLeft()
    }

    func testFilesetsFromTheConfigAndFromTOMLAndJSONFilesMixInOneCommand() async throws {
        try put("f1", "target/release/myapp", "linux app\n")
        try put("f1", "target/release/myapp.d", "deps\n")
        try put("f2", "docs/manual.txt", "manual\n")
        try put("d1", "coverage/index.html", "<html>\n")
        let config = try String(contentsOfFile: fleet.configPath, encoding: .utf8)
        try (config + """

            [filesets.release]
            include = ["target/release/*"]
            exclude = ["*.d"]
            required = true
            """).write(toFile: fleet.configPath, atomically: true, encoding: .utf8)
        let toml = fleet.directory.file("docs.toml")
        try "name = \"docs\"\ninclude = [\"docs/**\"]\ndest = \"drop/docs\"\n".write(to: toml, atomically: true, encoding: .utf8)
        let json = fleet.directory.file("cov.json")
        try #"[{"name":"coverage","include":["coverage"],"required":"yes"},{"name":"nothing","include":["no/such/*"]}]"#
            .write(to: json, atomically: true, encoding: .utf8)

        let run = try await slurp(["--fileset-file", toml.path, "--fileset", "release", "--fileset-file", json.path,
                                   "--dest", dest.path, "--json"])
        XCTAssertEqual(run.result.exit, .exited(0), run.result.transcript)
        let sets = Self.sets(run.json)
        XCTAssertEqual(sets.compactMap { $0["name"] as? String }, ["docs", "release", "coverage", "nothing"], "command-line order")
        XCTAssertEqual(sets.compactMap { $0["missing"] as? Bool }, [false, false, false, true], "an optional set may be missing")
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("target/release/myapp"), encoding: .utf8), "linux app\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest.appendingPathComponent("target/release/myapp.d").path))
        XCTAssertEqual(try String(contentsOf: fleet.directory.file("drop/docs/docs/manual.txt"), encoding: .utf8), "manual\n",
                       "a set's own dest (relative to its file) wins over --dest")
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("coverage/index.html"), encoding: .utf8), "<html>\n")

        let unknown = try await slurp(["--fileset", "nope", "--dest", dest.path])
        XCTAssertEqual(unknown.result.exit, .exited(2), unknown.result.transcript)
        XCTAssertTrue(unknown.result.stderrString.contains("'nope'") && unknown.result.stderrString.contains("release"),
                      unknown.result.stderrString)
        try #"{"name":"x","include":["a"],"required":"perhaps"}"#.write(to: json, atomically: true, encoding: .utf8)
        let bad = try await slurp(["--fileset-file", json.path])
        XCTAssertEqual(bad.result.exit, .exited(2), bad.result.transcript)
        XCTAssertTrue(bad.result.stderrString.contains("field 'required' = \"perhaps\""), bad.result.stderrString)
    }

    func testMissingRequiredSetFailsNamingItAndOptionalIsReported() async throws {
        try put("f1", "dist/app", "x\n")
        let required = try await slurp(["--fileset-data", "name=mac-app&include=target/release/*.app/**&required=true",
                                        "--fileset-data", "name=bin&include=dist/*", "--dest", dest.path, "--json"])
        XCTAssertEqual(required.result.exit, .exited(1), required.result.transcript)
        XCTAssertTrue(required.result.stderrString.contains("'mac-app'"), required.result.stderrString)
        let sets = Self.sets(required.json)
        XCTAssertEqual(sets.first?["missing"] as? Bool, true)
        XCTAssertEqual(sets.first?["required"] as? Bool, true)
        XCTAssertEqual((sets.first?["hosts"] as? [Any])?.count, 0)

        let optional = try await slurp(["--fileset-data", "name=mac-app&include=target/release/*.app/**&required=no", "--dest",
                                        fleet.directory.file("other").path])
        XCTAssertEqual(optional.result.exit, .exited(0), optional.result.transcript)
        XCTAssertTrue(optional.result.stdoutString.contains("mac-app: missing"), optional.result.stdoutString)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fleet.directory.file("other").path), "nothing to place, nothing made")
    }

    func testEscapingIncludesAreRefusedAndNothingIsWrittenOutsideDest() async throws {
        for include in ["../ws-f2/secret", "/etc/passwd", "dist/../../x"] {
            let run = try await slurp(["--fileset-data", "name=evil&include=\(include)", "--dest", dest.path])
            XCTAssertEqual(run.result.exit, .exited(2), run.result.transcript)
            XCTAssertTrue(run.result.stderrString.contains("include[0]"), run.result.stderrString)
        }
        // A symlink in the workspace that leads out of it: the follower refuses it.
        let secret = fleet.directory.file("secret.txt")
        try "top secret\n".write(to: secret, atomically: true, encoding: .utf8)
        try put("f1", "dist/ok.txt", "fine\n")
        try FileManager.default.createSymbolicLink(atPath: workspace("f1").appendingPathComponent("dist/leak").path,
                                                   withDestinationPath: secret.path)
        try FileManager.default.createSymbolicLink(atPath: workspace("f1").appendingPathComponent("outdir").path,
                                                   withDestinationPath: fleet.directory.path)
        // The test directory's top level (listing only: ws-f1/outdir leads back up here).
        let before = Set((try? FileManager.default.contentsOfDirectory(atPath: fleet.directory.path)) ?? [])
        let run = try await slurp(["--fileset-data", "name=evil&include=dist/*&include=outdir/secret.txt&include=outdir",
                                   "--dest", dest.path, "--json"])
        XCTAssertEqual(run.result.exit, .exited(0), run.result.transcript)
        XCTAssertEqual(Self.tree(dest), ["dist", "dist/ok.txt"])
        let host = try XCTUnwrap(Self.hosts((Self.sets(run.json).first ?? [:]))["f1"])
        let skipped = host["skipped"] as? [String] ?? []
        XCTAssertTrue(skipped.contains { $0.hasPrefix("dist/leak:") && $0.contains("outside the workspace") }, "\(skipped)")
        XCTAssertTrue(skipped.contains { $0.hasPrefix("outdir/secret.txt:") }, "\(skipped)")
        let after = Set((try? FileManager.default.contentsOfDirectory(atPath: fleet.directory.path)) ?? [])
        XCTAssertEqual(after.subtracting(before).subtracting(["state"]).sorted(), ["drop"], "nothing written outside dest (state: the leader's own)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dest.deletingLastPathComponent().path), ["artifacts"])
        XCTAssertEqual(try String(contentsOf: secret, encoding: .utf8), "top secret\n")
        assertNoStagingLeft()
    }

    func testChecksumMismatchIsNeverMovedIntoPlace() async throws {
        // AH_TEST_SLURP_CORRUPT is a test-only fault: the leader service (started by this
        // command, so it inherits the variable) flips a byte of that file between the
        // follower's stream and its own hash. SSH's MAC makes this impossible on a real wire.
        try put("f1", "dist/app", "genuine\n")
        try put("f1", "dist/other", "also genuine\n")
        try FileManager.default.createDirectory(at: dest, withIntermediateDirectories: true)
        try "old\n".write(to: dest.appendingPathComponent("app"), atomically: true, encoding: .utf8)
        let run = try await slurp(["--fileset-data", "name=bin&include=dist/*&required=yes", "--dest", dest.path, "--json"],
                                  environment: ["AH_TEST_SLURP_CORRUPT": "dist/app"])
        XCTAssertEqual(run.result.exit, .exited(1), run.result.transcript)
        let host = try XCTUnwrap(Self.hosts((Self.sets(run.json).first ?? [:]))["f1"])
        XCTAssertEqual(host["status"] as? String, "failed")
        XCTAssertTrue((host["error"] as? String ?? "").contains("checksum mismatch"), "\(host)")
        XCTAssertEqual(Self.tree(dest), ["app"], "the destination is as it was")
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("app"), encoding: .utf8), "old\n")
        assertNoStagingLeft()
    }

    func testFollowerKilledMidTransferIsReportedWhileTheOthersComplete() async throws {
        try put("f1", "dist/small.txt", "from f1\n")
        try put("d1", "dist/small.txt", "from d1\n")
        // Big enough that f2 is still sending when its executor dies.
        let big = workspace("f2").appendingPathComponent("dist/big.bin")
        try FileManager.default.createDirectory(at: big.deletingLastPathComponent(), withIntermediateDirectories: true)
        let created = try await ProcessRunner.run(URL(fileURLWithPath: "/bin/sh"), ["-c", "head -c \(128 << 20) /dev/urandom > '\(big.path)'"])
        XCTAssertEqual(created.exit, .exited(0), created.transcript)
        let run = Task { try await self.slurp(["--fileset-data", "name=bin&include=dist", "--dest", dest.path, "--json"]) }
        // Wait until f2's file is being written in the staging directory beside dest, then kill
        // f2's executor (its tunnel dies). The transfer runs in the leader service (another
        // process) and announces no progress: the staging file appearing on disk is the only
        // sign it is mid-transfer, so it is polled.
        let parent = dest.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true)
        var seen = false
        for _ in 0..<3000 where !seen {
            for staging in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] where staging.hasPrefix(".ah-slurp-") {
                let receiving = parent.appendingPathComponent(staging).appendingPathComponent("recv")
                for host in (try? FileManager.default.contentsOfDirectory(atPath: receiving.path)) ?? [] where host.hasSuffix("-f2") {
                    let partial = receiving.appendingPathComponent(host).appendingPathComponent("dist/big.bin")
                    if let size = try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int, size > 0 { seen = true }
                }
            }
            if !seen { try await Task.sleep(nanoseconds: 10_000_000) }
        }
        XCTAssertTrue(seen, "f2's transfer was never seen under way")
        fleet.tunnels.agents["f2"]!.send(signal: SIGKILL)
        let (result, json) = try await run.value
        XCTAssertEqual(result.exit, .exited(1), result.transcript)
        let hosts = Self.hosts((Self.sets(json).first ?? [:]))
        XCTAssertEqual(hosts["f2"]?["status"] as? String, "failed", "\(hosts["f2"] ?? [:])")
        XCTAssertTrue((hosts["f2"]?["error"] as? String ?? "").contains("went away"), "\(hosts["f2"] ?? [:])")
        XCTAssertEqual(hosts["f1"]?["status"] as? String, "ok")
        XCTAssertEqual(hosts["d1"]?["status"] as? String, "ok")
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("bin/f1/dist/small.txt"), encoding: .utf8), "from f1\n")
        XCTAssertEqual(try String(contentsOf: dest.appendingPathComponent("bin/d1/dist/small.txt"), encoding: .utf8), "from d1\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest.appendingPathComponent("bin/f2").path), "nothing of f2 is placed")
        assertNoStagingLeft()
    }

    func testTwoThousandSmallFilesAndOneLargeFileArriveIntact() async throws {
        // The issue's large file is 512 MiB: bench/slurp moves that size; the suite keeps to
        // AH_TEST_SLURP_LARGE_MIB (default 64) so CI stays fast.
        let largeMiB = Int(ProcessInfo.processInfo.environment["AH_TEST_SLURP_LARGE_MIB"] ?? "") ?? 64
        let root = workspace("d1").appendingPathComponent("build")
        let script = """
            set -e
            cd '\(root.deletingLastPathComponent().path)'
            mkdir -p build/small
            head -c \(largeMiB << 20) /dev/urandom > build/large.bin
            for d in $(seq 0 19); do mkdir -p build/small/$d; for f in $(seq 0 99); do
              head -c $(( (d * 100 + f) % 4096 + 1 )) /dev/urandom > build/small/$d/$f.dat; done; done
            """
        let made = try await ProcessRunner.run(URL(fileURLWithPath: "/bin/sh"), ["-c", script], timeout: 300)
        XCTAssertEqual(made.exit, .exited(0), made.transcript)
        let (result, json) = try await slurp(["--fileset-data", "name=build&include=build&required=1", "--dest", dest.path, "--json"],
                                             timeout: 600)
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        let files = Self.hosts((Self.sets(json).first ?? [:]))["d1"]?["files"] as? [[String: Any]] ?? []
        XCTAssertEqual(files.count, 2001)
        let diff = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/diff"), ["-r", "-q", root.path, dest.appendingPathComponent("build").path],
                                               timeout: 300)
        XCTAssertEqual(diff.exit, .exited(0), diff.transcript)
        XCTAssertEqual(diff.stdoutString, "")
        assertNoStagingLeft()
    }
}
