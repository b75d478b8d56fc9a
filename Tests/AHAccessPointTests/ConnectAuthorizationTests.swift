import AHTestSupport
import Foundation
import XCTest

/// A plain CONNECT client (raw socket) gets the documented status for every case:
/// 407 no/invalid token, 403 not allowed, 404 unknown executor, 503 offline, 502 refused
/// destination, 400 malformed, 200 then the sshd's own bytes.
final class ConnectAuthorizationTests: XCTestCase {
    var fixture: TunnelFixture!

    override func tearDown() async throws {
        await fixture?.stop()
    }

    private func start(serveArguments: [String] = []) async throws {
        try Requirement.sshd()
        fixture = try TunnelFixture(serveArguments: serveArguments)
        try await fixture.start()
        try await fixture.addExecutor("node1")
    }

    func testStatusForEachCase() async throws {
        try await start()
        try await fixture.addExecutor("quiet", extra: ["--ssh", "disabled"])
        let operatorToken = try await fixture.userToken("alice")
        let viewerToken = try await fixture.userToken("victor", role: "viewer")
        let bearer = "Proxy-Authorization: Bearer \(operatorToken.jwt)"

        var answer = try fixture.rawConnect("node1:22")
        XCTAssertEqual(answer.status, 407, answer.text)
        XCTAssertTrue(answer.text.lowercased().contains("proxy-authenticate: bearer"), answer.text)
        answer = try fixture.rawConnect("node1:22", headers: ["Proxy-Authorization: Bearer not.a.jwt"])
        XCTAssertEqual(answer.status, 407, answer.text)
        answer = try fixture.rawConnect("node1:22", headers: ["Proxy-Authorization: Digest abc"])
        XCTAssertEqual(answer.status, 407, answer.text)
        answer = try fixture.rawConnect("node1:22", headers: ["Proxy-Authorization: Bearer \(viewerToken.jwt)"])
        XCTAssertEqual(answer.status, 403, answer.text)
        answer = try fixture.rawConnect("nosuch:22", headers: [bearer])
        XCTAssertEqual(answer.status, 404, answer.text)
        answer = try fixture.rawConnect("node1:2222", headers: [bearer])
        XCTAssertEqual(answer.status, 502, answer.text)
        XCTAssertTrue(answer.text.contains("not-allowed"), answer.text)
        answer = try fixture.rawConnect("quiet:22", headers: [bearer])
        XCTAssertEqual(answer.status, 502, answer.text)
        XCTAssertTrue(answer.text.contains("ssh-disabled"), answer.text)
        answer = try fixture.rawConnect("node1", headers: [bearer])
        XCTAssertEqual(answer.status, 400, answer.text)
        answer = try fixture.rawConnect("[::1]:22", headers: [bearer])
        XCTAssertEqual(answer.status, 400, answer.text)

        // 200 with Basic (the JWT as password, as curl -U / socat send it), then raw bytes:
        // the first thing an sshd says is its version banner.
        let basic = Data("anyone:\(operatorToken.jwt)".utf8).base64EncodedString()
        let socket = try RawSocket(port: fixture.serve.httpPort)
        try socket.send("CONNECT node1.example.org:22 HTTP/1.1\r\nHost: node1:22\r\nProxy-Authorization: Basic \(basic)\r\n\r\n")
        let (text, found) = socket.read(until: "SSH-2.0-", timeout: 20)
        XCTAssertTrue(found, text)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 "), text)

        // Offline: the executor is enrolled but gone.
        _ = await fixture.agents["quiet"]!.terminate(grace: 5)
        _ = try await fixture.waitForState("quiet", "offline", timeout: 10)
        answer = try fixture.rawConnect("quiet:22", headers: [bearer])
        XCTAssertEqual(answer.status, 503, answer.text)

        // Every attempt is audited with its subject and result.
        let audit = try await tunnelAudit(fixture)
        let results = audit.map { "\($0["subject"] as? String ?? "-") \($0["executor_name"] as? String ?? "") \($0["result"] as? String ?? "")" }
        XCTAssertTrue(results.contains("- node1 407"), "\(results)")
        XCTAssertTrue(results.contains("victor node1 403"), "\(results)")
        XCTAssertTrue(results.contains("alice nosuch 404"), "\(results)")
        XCTAssertTrue(results.contains("alice quiet 502"), "\(results)")
        XCTAssertTrue(results.contains("alice quiet 503"), "\(results)")
        XCTAssertTrue(results.contains { $0.hasPrefix("alice node1 ") && ($0.hasSuffix(" open") || $0.hasSuffix(" closed") || $0.hasSuffix(" aborted")) }, "\(results)")
    }

    func testACLFromTheServerConfig() async throws {
        let directory = try TemporaryDirectory(prefix: "ah-acl")
        let config = directory.file("serve.toml").path
        try """
            [serve]
            idle-timeout = "30s"

            [[serve.acl]]
            subject = "alice"
            executors = ["node1"]
            verbs = ["ssh"]

            [[serve.acl]]
            subject = "*"
            executors = ["tag:pool=shared"]
            verbs = ["ssh"]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        try await start(serveArguments: ["--config", config])
        let alice = try await fixture.userToken("alice")
        let bob = try await fixture.userToken("bob")
        let root = try await fixture.userToken("root", role: "admin")

        let allowed = try await fixture.ssh("node1", "echo alice-ok", tokenFile: alice.file)
        XCTAssertEqual(allowed.stdoutString, "alice-ok\n", allowed.transcript)
        let denied = try fixture.rawConnect("node1:22", headers: ["Proxy-Authorization: Bearer \(bob.jwt)"])
        XCTAssertEqual(denied.status, 403, denied.text)
        XCTAssertTrue(denied.text.contains("bob"), denied.text)
        let viaSSH = try await fixture.ssh("node1", "echo bob", tokenFile: bob.file)
        XCTAssertEqual(viaSSH.exit, .exited(255), viaSSH.transcript)
        XCTAssertTrue(viaSSH.stderrString.contains("403"), viaSSH.stderrString)
        let admin = try await fixture.ssh("node1", "echo admin-ok", tokenFile: root.file)
        XCTAssertEqual(admin.stdoutString, "admin-ok\n", admin.transcript)
    }
}
