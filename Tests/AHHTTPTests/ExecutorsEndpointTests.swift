import AHAPI
import AHAuth
@testable import AHHTTPServer
import AHStore
import AHTestSupport
import Foundation
import XCTest

/// `GET /api/v1/executors` over real sockets: authentication, roles, and the JSON contract.
final class ExecutorsEndpointTests: XCTestCase {
    private var fixture: HTTPTestFixture!

    override func setUp() async throws {
        fixture = try await HTTPTestFixture()
    }

    override func tearDown() async throws {
        await fixture.shutdown()
        fixture = nil
    }

    func testWithoutTokenIs401ProblemWithChallenge() async throws {
        let response = try await fixture.client.get("/api/v1/executors")
        XCTAssertEqual(response.status.code, 401)
        XCTAssertEqual(response.headers.first(name: "www-authenticate"), #"Bearer realm="ah""#)
        try assertProblem(response.body, type: "urn:ah:problem:unauthorized", status: 401)
        XCTAssertEqual(response.headers.first(name: "content-type"), "application/problem+json")
    }

    func testBadTokensAre401() async throws {
        let stranger = await UserTokenAuthority.ephemeral()
        let foreign = try await stranger.mint(subject: "mallory", role: .admin, ttl: 600)
        let expired = try await fixture.authority.mint(subject: "alice", role: .admin, ttl: 60, now: Date().addingTimeInterval(-3600))
        for (token, reason) in [("garbage", "well-formed"), (foreign, "signature"), (expired, "expired")] {
            let response = try await fixture.client.get("/api/v1/executors", bearerToken: token)
            XCTAssertEqual(response.status.code, 401, reason)
            XCTAssertEqual(response.headers.first(name: "www-authenticate"), #"Bearer realm="ah", error="invalid_token""#)
            let problem = try XCTUnwrap(response.problem)
            XCTAssertTrue(problem.detail.contains(reason), problem.detail)
            XCTAssertFalse(problem.detail.contains(token), "the detail must not echo the token")
        }
    }

    func testUnsupportedSchemeIs401() async throws {
        let raw = try RawSocket(port: fixture.port)
        try raw.send("GET /api/v1/executors HTTP/1.1\r\nHost: x\r\nAuthorization: Digest abc\r\nConnection: close\r\n\r\n")
        let text = raw.readUntilClose(timeout: 5).text
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 401"), text)
        XCTAssertTrue(text.contains("unsupported authorization scheme"), text)
    }

    func testEveryRoleFromViewerUpIsAccepted() async throws {
        for role in Role.allCases {
            let response = try await fixture.client.get("/api/v1/executors", bearerToken: try await fixture.token(role))
            XCTAssertEqual(response.status.code, 200, "\(role)")
            XCTAssertEqual(try response.decode(ExecutorList.self), ExecutorList(items: []))
        }
    }

    func testBasicWithTheTokenAsPasswordIsAccepted() async throws {
        let token = try await fixture.token(.viewer)
        let raw = try RawSocket(port: fixture.port)
        let basic = Data("anyone:\(token)".utf8).base64EncodedString()
        try raw.send("GET /api/v1/executors HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \(basic)\r\nConnection: close\r\n\r\n")
        let text = raw.readUntilClose(timeout: 5).text
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200"), text)
    }

    func testRoleBelowTheRequiredOneIs403() async throws {
        // No REST route needs more than viewer yet; the rule is exercised directly.
        let routes = HTTPAPIRoutes(authority: fixture.authority, executors: StoreExecutorDirectory(store: fixture.store))
        let token = try await fixture.token(.viewer, subject: "vic")
        let request = HTTPAPIRequest(method: .GET, uri: "/api/v1/executors", headers: ["authorization": "Bearer \(token)"])
        guard case .failure(let refusal) = await routes.authorize(request, requiring: .admin) else {
            return XCTFail("a viewer was allowed what needs admin")
        }
        XCTAssertEqual(refusal.response.status.code, 403)
        let problem = try assertProblem(refusal.response.body, type: "urn:ah:problem:forbidden", status: 403)
        XCTAssertTrue(problem.detail.contains("'viewer'") && problem.detail.contains("'admin'"), problem.detail)
        guard case .success(let claims) = await routes.authorize(request, requiring: .viewer) else { return XCTFail("viewer refused") }
        XCTAssertEqual(claims.subject, "vic")
    }

    func testEnrolledExecutorAppearsWithTheExactKeys() async throws {
        try await fixture.enroll("node1", tags: ["os": "linux", "arch": "arm64"])
        try await fixture.enroll("node2", at: fixedTime.addingTimeInterval(60))
        try await fixture.store.revoke(name: "node2", reason: "test", now: fixedTime.addingTimeInterval(120))
        let response = try await fixture.client.get("/api/v1/executors", bearerToken: try await fixture.token(.viewer))
        XCTAssertEqual(response.status.code, 200)
        XCTAssertEqual(response.headers.first(name: "content-type"), "application/json")
        let document = try jsonObject(response.body)
        XCTAssertEqual(Set(document.keys), ["items"])
        let items = try XCTUnwrap(document["items"] as? [[String: Any]])
        XCTAssertEqual(items.count, 1, "revoked executors are not listed")
        let item = try XCTUnwrap(items.first)
        XCTAssertEqual(Set(item.keys), ["name", "spiffeId", "state", "tags", "certNotAfter", "lastSeen", "facts", "heartbeat", "connectedAt"])
        XCTAssertEqual(item["name"] as? String, "node1")
        XCTAssertEqual(item["spiffeId"] as? String, "spiffe://example.org/ah/agent/node1")
        XCTAssertEqual(item["state"] as? String, "offline")
        XCTAssertEqual(item["tags"] as? [String: String], ["os": "linux", "arch": "arm64"])
        XCTAssertEqual(item["certNotAfter"] as? String, "2023-11-14T23:13:20Z")
        XCTAssertEqual(item["lastSeen"] as? String, "2023-11-14T22:13:20Z")
        XCTAssertTrue(String(decoding: response.body, as: UTF8.self).contains(#""spiffeId":"spiffe://example.org/ah/agent/node1""#),
                      "slashes are not escaped")
    }

    func testAbsentTimesAreNullNotMissing() throws {
        let view = ExecutorView(name: "n", spiffeId: "spiffe://td/ah/agent/n", state: .connected, tags: [:],
                                certNotAfter: nil, lastSeen: nil)
        let object = try jsonObject(try APIJSON.encode(view))
        XCTAssertEqual(Set(object.keys), ["name", "spiffeId", "state", "tags", "certNotAfter", "lastSeen", "facts", "heartbeat", "connectedAt"])
        XCTAssertTrue(object["certNotAfter"] is NSNull)
        XCTAssertTrue(object["lastSeen"] is NSNull)
        XCTAssertEqual(try JSONDecoder().decode(ExecutorView.self, from: Data(try APIJSON.encode(view))), view)
    }

    func testDirectoryFailureIs500Problem() async throws {
        await fixture.shutdown()
        fixture = try await HTTPTestFixture(directory: { _ in FailingDirectory() })
        let response = try await fixture.client.get("/api/v1/executors", bearerToken: try await fixture.token(.viewer))
        XCTAssertEqual(response.status.code, 500)
        try assertProblem(response.body, type: "urn:ah:problem:internal", status: 500)
    }
}

private struct FailingDirectory: ExecutorDirectory {
    func executors() async throws -> [ExecutorView] { throw RawSocketError("registry down") }
}

/// Asserts an RFC 9457 body with exactly type/title/status/detail and returns it.
@discardableResult
func assertProblem(_ body: [UInt8], type: String, status: Int, file: StaticString = #filePath, line: UInt = #line) throws -> Problem {
    let object = try jsonObject(body)
    XCTAssertEqual(Set(object.keys), ["type", "title", "status", "detail"], file: file, line: line)
    let problem = try JSONDecoder().decode(Problem.self, from: Data(body))
    XCTAssertEqual(problem.type, type, file: file, line: line)
    XCTAssertEqual(problem.status, status, file: file, line: line)
    XCTAssertFalse(problem.title.isEmpty, file: file, line: line)
    XCTAssertFalse(problem.detail.isEmpty, file: file, line: line)
    return problem
}
