import AHTestSupport
import Foundation
import XCTest

/// The real OpenSSH client through `ah connect` → `ah serve` → QUIC → `ah agent enroll` →
/// a real sshd, on loopback.
final class SSHTunnelTests: XCTestCase {
    var fixture: TunnelFixture!

    override func setUp() async throws {
        try Requirement.sshd()
        fixture = try TunnelFixture()
        try await fixture.start()
        try await fixture.addExecutor("node1")
    }

    override func tearDown() async throws {
        await fixture?.stop()
    }

    func testCommandsRunAndExitCodesComeBack() async throws {
        let token = try await fixture.userToken()
        let uname = try await fixture.ssh("node1", "uname -a", tokenFile: token.file)
        XCTAssertEqual(uname.exit, .exited(0), uname.transcript)
        XCTAssertTrue(uname.stdoutString.hasPrefix("Linux "), uname.stdoutString)
        let failing = try await fixture.ssh("node1", "echo out; echo err >&2; exit 7", tokenFile: token.file)
        XCTAssertEqual(failing.exit, .exited(7), failing.transcript)
        XCTAssertEqual(failing.stdoutString, "out\n")
        XCTAssertTrue(failing.stderrString.contains("err"), failing.stderrString)
        // A domain suffix on the node name is ignored.
        let suffixed = try await fixture.ssh("node1.ah.example.org", "echo ok", tokenFile: token.file)
        XCTAssertEqual(suffixed.stdoutString, "ok\n", suffixed.transcript)
    }

    func testScpOf64MiBArrivesIntact() async throws {
        let token = try await fixture.userToken()
        let source = fixture.directory.file("payload").path
        var generator = SystemRandomNumberGenerator()
        let chunk = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        XCTAssertTrue(FileManager.default.createFile(atPath: source, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: source))
        for index in 0..<64 { handle.write(Data(chunk.map { $0 &+ UInt8(index) })) }
        try handle.close()
        let copy = fixture.directory.file("payload.copy").path
        let scp = try await ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/scp"),
            ["-q"] + (try fixture.sshOptions("node1", tokenFile: token.file)) + [source, "root@node1:\(copy)"], timeout: 120)
        XCTAssertEqual(scp.exit, .exited(0), scp.transcript)
        let sums = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/sha256sum"), [source, copy])
        let digests = sums.stdoutString.split(separator: "\n").map { $0.split(separator: " ").first.map(String.init) ?? "" }
        XCTAssertEqual(digests.count, 2)
        XCTAssertEqual(digests.first, digests.last, sums.stdoutString)
        let size = try FileManager.default.attributesOfItem(atPath: copy)[.size] as? Int
        XCTAssertEqual(size, 64 << 20)
        // The audit saw the bytes (client → executor at least the file).
        let audit = try await tunnelAudit(fixture)
        XCTAssertTrue(audit.contains { ($0["bytes_up"] as? Int ?? 0) >= 64 << 20 && $0["result"] as? String == "closed" }, "\(audit)")
    }

    func testTwentyConcurrentSessionsThroughOneExecutor() async throws {
        let token = try await fixture.userToken()
        let fixture = self.fixture!
        let results = try await withThrowingTaskGroup(of: (Int, ProcessResult).self) { group in
            for index in 0..<20 {
                group.addTask { (index, try await fixture.ssh("node1", "echo session-\(index); head -c 100000 /dev/zero | wc -c", tokenFile: token.file)) }
            }
            var all: [(Int, ProcessResult)] = []
            for try await result in group { all.append(result) }
            return all
        }
        XCTAssertEqual(results.count, 20)
        for (index, result) in results {
            XCTAssertEqual(result.exit, .exited(0), result.transcript)
            XCTAssertEqual(result.stdoutString, "session-\(index)\n100000\n", result.transcript)
        }
    }

    func testStrictHostKeyCheckingUsesReportedKeys() async throws {
        let token = try await fixture.userToken("viewer-and-tunnels", role: "operator")
        let knownHosts = fixture.directory.file("known_hosts").path
        let configFile = fixture.directory.file("ssh_config").path
        let config = try await ah(["ssh-config", "--remote-server", fixture.httpURL, "--token-file", token.file,
                                   "--known-hosts", knownHosts])
        XCTAssertEqual(config.exit, .exited(0), config.transcript)
        try config.stdoutString.write(toFile: configFile, atomically: true, encoding: .utf8)
        XCTAssertTrue(config.stdoutString.contains("HostKeyAlias ah-node1"), config.stdoutString)
        XCTAssertTrue(config.stdoutString.contains("StrictHostKeyChecking yes"), config.stdoutString)
        let pinned = try String(contentsOfFile: knownHosts, encoding: .utf8)
        let hostKey = fixture.daemons["node1"]!.hostKeyPublic.split(separator: " ")
        XCTAssertTrue(pinned.contains("ah-node1 \(hostKey[0]) \(hostKey[1])"), pinned)

        let daemon = fixture.daemons["node1"]!
        let strict = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh"),
                                                 ["-F", configFile] + daemon.clientOptions + ["root@node1", "echo verified"])
        XCTAssertEqual(strict.exit, .exited(0), strict.transcript)
        XCTAssertEqual(strict.stdoutString, "verified\n")

        // The executor now fronts another sshd with a different host key: the pinned key
        // no longer matches and ssh refuses, although the tunnel itself still works.
        _ = await fixture.agents["node1"]!.terminate(grace: 5)
        let impostor = try await SSHDaemon.start(in: fixture.directory.file("sshd-impostor"))
        try FileManager.default.removeItem(atPath: impostor.directory.appendingPathComponent("authorized_keys").path)
        try FileManager.default.copyItem(atPath: daemon.directory.appendingPathComponent("authorized_keys").path,
                                         toPath: impostor.directory.appendingPathComponent("authorized_keys").path)
        fixture.daemons["impostor"] = impostor
        let state = fixture.directory.file("agent-node1").path
        fixture.agents["node1"] = try await startAgent(["--remote-server", fixture.serve.remote, "--state-dir", state,
                                                        "--name", "node1", "--ssh-dst", "127.0.0.1:\(impostor.port)"],
                                                       awaiting: "connections=1")
        let refused = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh"),
                                                  ["-F", configFile] + daemon.clientOptions + ["root@node1", "echo should-not-run"])
        XCTAssertEqual(refused.exit, .exited(255), refused.transcript)
        XCTAssertFalse(refused.stdoutString.contains("should-not-run"))
        XCTAssertTrue(refused.stderrString.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || refused.stderrString.contains("Host key verification failed"),
                      refused.stderrString)
    }
}

/// The `tunnels` audit table, read straight from the state file with sqlite3's JSON mode.
func tunnelAudit(_ fixture: TunnelFixture) async throws -> [[String: Any]] {
    let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/python3"), ["-c", """
        import json, sqlite3, sys
        db = sqlite3.connect(sys.argv[1])
        db.row_factory = sqlite3.Row
        print(json.dumps([dict(r) for r in db.execute("SELECT * FROM tunnels ORDER BY id")]))
        """, fixture.serve.dataDir + "/state.sqlite"])
    XCTAssertEqual(result.exit, .exited(0), result.transcript)
    return (try JSONSerialization.jsonObject(with: result.stdout) as? [[String: Any]]) ?? []
}
