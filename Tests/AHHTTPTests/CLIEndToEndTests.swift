import AHAPI
import AHAuth
import AHHTTPServer
import AHTestSupport
import Foundation
import XCTest

/// The real `ah` binary against an in-process HTTPAPIServer: the command lines of cli.md,
/// their exit codes and their stdout/stderr split.
final class CLIEndToEndTests: XCTestCase {
    private var fixture: HTTPTestFixture!
    private var ah: URL!

    override func setUp() async throws {
        ah = try BuiltProducts.ah()
        fixture = try await HTTPTestFixture()
    }

    override func tearDown() async throws {
        await fixture.shutdown()
        fixture = nil
    }

    private func run(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run(ah, arguments, environment: ["AH_LOG_LEVEL": "error"], timeout: 60)
    }

    func testUserTokenPrintsAVerifiableToken() async throws {
        let plain = try await run(["user", "token", "--data-dir", fixture.directory.path, "--sub", "alice"])
        XCTAssertEqual(plain.exit, .exited(0), plain.transcript)
        let token = plain.stdoutString.trimmingCharacters(in: .newlines)
        XCTAssertFalse(token.contains("\n"))
        let claims = try await fixture.authority.verify(token)
        XCTAssertEqual(claims.subject, "alice")
        XCTAssertEqual(claims.role, .operator, "operator is the default role")
        XCTAssertEqual(claims.expiresAt.timeIntervalSince(try XCTUnwrap(claims.issuedAt)), 3600)

        let json = try await run(["user", "token", "--data-dir", fixture.directory.path, "--sub", "vic",
                                  "--role", "viewer", "--ttl", "15m", "--json"])
        XCTAssertEqual(json.exit, .exited(0), json.transcript)
        let document = try jsonObject(Array(json.stdout))
        XCTAssertEqual(Set(document.keys), ["token", "expiresAt"])
        let viewerClaims = try await fixture.authority.verify(try XCTUnwrap(document["token"] as? String))
        XCTAssertEqual(viewerClaims.role, .viewer)
        XCTAssertEqual(document["expiresAt"] as? String, ISO8601.string(from: viewerClaims.expiresAt))
        XCTAssertEqual(viewerClaims.expiresAt.timeIntervalSince(try XCTUnwrap(viewerClaims.issuedAt)), 900)
    }

    func testUserTokenBadInputIsExit2NamingTheValue() async throws {
        let cases: [([String], String)] = [
            (["--sub", "alice", "--role", "wizard"], "wizard"),
            (["--sub", "alice", "--ttl", "forever"], "forever"),
            (["--sub", "alice", "--ttl", "10"], "'10'"),
            (["--sub", "has space"], "has space"),
        ]
        for (extra, named) in cases {
            let result = try await run(["user", "token", "--data-dir", fixture.directory.path] + extra)
            XCTAssertEqual(result.exit, .exited(2), result.transcript)
            XCTAssertTrue(result.stderrString.contains(named), result.transcript)
            XCTAssertEqual(result.stderrString.split(separator: "\n").count, 1, "one stderr line: \(result.transcript)")
            XCTAssertEqual(result.stdoutString, "")
        }
    }

    func testUserTokenWithoutKeyTellsToStartServe() async throws {
        let empty = try TemporaryDirectory(prefix: "ah-empty")
        let result = try await run(["user", "token", "--data-dir", empty.path, "--sub", "alice"])
        XCTAssertEqual(result.exit, .exited(2), result.transcript)
        XCTAssertTrue(result.stderrString.contains("no signing key in \(empty.path); start `ah serve --data-dir \(empty.path)` once"),
                      result.transcript)
    }

    func testExecutorsListPrintsTheAPIDocumentAndATable() async throws {
        try await fixture.enroll("node1", tags: ["os": "linux"])
        let token = try await fixture.token(.viewer)

        let json = try await run(["executors", "list", "--remote-server", fixture.baseURL, "--token", token, "--json"])
        XCTAssertEqual(json.exit, .exited(0), json.transcript)
        let document = try jsonObject(Array(json.stdout))
        let items = try XCTUnwrap(document["items"] as? [[String: Any]])
        XCTAssertEqual(items.count, 1)
        XCTAssertEqual(Set(items[0].keys), ["name", "spiffeId", "state", "tags", "certNotAfter", "lastSeen", "facts", "heartbeat", "connectedAt"])
        XCTAssertEqual(items[0]["name"] as? String, "node1")
        XCTAssertEqual(items[0]["state"] as? String, "offline")

        let table = try await run(["executors", "list", "--remote-server", fixture.baseURL, "--token", token])
        XCTAssertEqual(table.exit, .exited(0), table.transcript)
        let lines = table.stdoutString.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, table.stdoutString)
        XCTAssertTrue(lines[0].hasPrefix("NAME"))
        for column in ["SPIFFE ID", "STATE", "TAGS", "CERT EXPIRES", "LAST SEEN"] {
            XCTAssertTrue(lines[0].contains(column), String(lines[0]))
        }
        XCTAssertTrue(lines[1].contains("node1") && lines[1].contains("spiffe://example.org/ah/agent/node1")
                      && lines[1].contains("offline") && lines[1].contains("os=linux")
                      && lines[1].contains("2023-11-14T23:13:20Z"), String(lines[1]))
    }

    func testExecutorsListRefusedTokenIsExit3WithTheDetail() async throws {
        let stranger = await UserTokenAuthority.ephemeral()
        let foreign = try await stranger.mint(subject: "mallory", role: .admin, ttl: 600)
        let result = try await run(["executors", "list", "--remote-server", fixture.baseURL, "--token", foreign, "--json"])
        XCTAssertEqual(result.exit, .exited(3), result.transcript)
        XCTAssertTrue(result.stderrString.contains("token signature is not valid"), result.transcript)
        XCTAssertEqual(result.stdoutString, "", "nothing on stdout when it fails")
    }

    func testExecutorsListUnreachableIsExit3AndBadURLIsExit2() async throws {
        let token = try await fixture.token(.viewer)
        let port = fixture.port
        await fixture.server.close()
        let refused = try await run(["executors", "list", "--remote-server", "http://127.0.0.1:\(port)", "--token", token])
        XCTAssertEqual(refused.exit, .exited(3), refused.transcript)
        XCTAssertTrue(refused.stderrString.contains("cannot connect"), refused.transcript)

        for url in ["ftp://127.0.0.1:1", "not a url", "http://:80"] {
            let bad = try await run(["executors", "list", "--remote-server", url, "--token", token])
            XCTAssertEqual(bad.exit, .exited(2), bad.transcript)
            XCTAssertTrue(bad.stderrString.contains(url), bad.transcript)
        }
    }
}
