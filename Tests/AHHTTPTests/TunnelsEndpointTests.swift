import AHAPI
import AHAuth
import AHHTTPClient
@testable import AHHTTPServer
import AHStore
import AHTestSupport
import Foundation
import XCTest

/// `GET /api/v1/tunnels` over a real socket and a real state file: roles (operator and up;
/// a viewer gets 403), pages that follow `next` to the end without gaps or repeats, the row
/// shape, and the bad-parameter answers.
final class TunnelsEndpointTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var store: StateStore!
    private var authority: UserTokenAuthority!
    private var server: HTTPAPIServer!

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-http-tunnels")
        store = try await StateStore.open(path: directory.file("state.sqlite").path)
        authority = try await UserTokenAuthority.loadOrCreate(dataDirectory: directory.path)
        var routes = HTTPAPIRoutes(authority: authority, executors: StoreExecutorDirectory(store: store))
        routes.tunnelAudit = store
        server = try await HTTPAPIServer.start(host: "127.0.0.1", port: 0, routes: routes)
    }

    override func tearDown() async throws {
        await server?.close()
        await store?.close()
    }

    private var client: HTTPAPIClient {
        HTTPAPIClient(server: try! APIServerURL(parsing: "http://127.0.0.1:\(server.port)"), timeout: .seconds(10))
    }

    private func token(_ role: Role) async throws -> String {
        try await authority.mint(subject: "alice", role: role, ttl: 600)
    }

    /// `count` audited attempts, oldest first: every third refused (407, no subject), the rest
    /// opened and ended with bytes. Returns their ids in order.
    private func audit(_ count: Int) -> [Int64] {
        var ids: [Int64] = []
        for index in 0..<count {
            let refused = index % 3 == 2
            let attempt = TunnelAttempt(subject: refused ? nil : "user\(index)", executorName: "node\(index % 2)", port: 22,
                                        remote: "127.0.0.1:\(40000 + index)", result: refused ? "407" : "open",
                                        detail: refused ? "no Proxy-Authorization" : "")
            let id = store.tunnelStarted(attempt, now: Date(timeIntervalSince1970: 1_700_000_000 + Double(index)))
            if !refused {
                store.tunnelEnded(id: id, bytesUp: 100 + index, bytesDown: 1000 + index, result: "closed", detail: "",
                                  now: Date(timeIntervalSince1970: 1_700_000_100 + Double(index)))
            }
            ids.append(id)
        }
        return ids
    }

    func testOperatorPagesThroughEverythingNewestFirstWithoutGapsOrRepeats() async throws {
        let ids = audit(25)
        let jwt = try await token(.operator)
        var path: String? = "/api/v1/tunnels?limit=10"
        var seen: [Int64] = []
        var pages: [Int] = []
        while let next = path {
            let response = try await client.get(next, bearerToken: jwt)
            XCTAssertEqual(response.status.code, 200, String(decoding: response.body, as: UTF8.self))
            let page = try response.decode(TunnelAuditPage.self)
            pages.append(page.items.count)
            seen += page.items.map(\.id)
            path = page.next
            if pages.count > 10 { return XCTFail("paging does not end: \(pages)") }
        }
        XCTAssertEqual(pages, [10, 10, 5])
        XCTAssertEqual(seen, Array(ids.reversed()), "every row once, newest first")
    }

    func testRowShapeForAnEndedAndARefusedTunnel() async throws {
        let ids = audit(3)
        let response = try await client.get("/api/v1/tunnels", bearerToken: try await token(.admin))
        XCTAssertEqual(response.status.code, 200)
        let object = try jsonObject(response.body)
        XCTAssertTrue(object["next"] is NSNull, "a short page is the last: \(object)")
        let items = try XCTUnwrap(object["items"] as? [[String: Any]])
        XCTAssertEqual(items.count, 3)
        let keys: Set = ["id", "subject", "executor", "port", "remote", "startedAt", "endedAt", "bytesUp", "bytesDown", "result", "detail"]
        for item in items { XCTAssertEqual(Set(item.keys), keys) }
        let refused = items[0]
        XCTAssertEqual((refused["id"] as? NSNumber)?.int64Value, ids[2])
        XCTAssertTrue(refused["subject"] is NSNull)
        XCTAssertEqual(refused["result"] as? String, "407")
        XCTAssertEqual(refused["detail"] as? String, "no Proxy-Authorization")
        let ended = items[1]
        XCTAssertEqual(ended["subject"] as? String, "user1")
        XCTAssertEqual(ended["executor"] as? String, "node1")
        XCTAssertEqual(ended["remote"] as? String, "127.0.0.1:40001")
        XCTAssertEqual(ended["startedAt"] as? String, "2023-11-14T22:13:21Z")
        XCTAssertEqual(ended["endedAt"] as? String, "2023-11-14T22:15:01Z")
        XCTAssertEqual(ended["bytesUp"] as? Int, 101)
        XCTAssertEqual(ended["bytesDown"] as? Int, 1001)
        XCTAssertEqual(ended["result"] as? String, "closed")
    }

    func testViewerIs403AndNoTokenIs401() async throws {
        _ = audit(1)
        let viewer = try await client.get("/api/v1/tunnels", bearerToken: try await token(.viewer))
        XCTAssertEqual(viewer.status.code, 403)
        XCTAssertEqual(viewer.headers.first(name: "content-type"), "application/problem+json")
        let problem = try XCTUnwrap(viewer.problem)
        XCTAssertTrue(problem.detail.contains("'viewer'") && problem.detail.contains("'operator'"), problem.detail)
        XCTAssertFalse(String(decoding: viewer.body, as: UTF8.self).contains("127.0.0.1:40000"), "no audit data in a refusal")
        let anonymous = try await client.get("/api/v1/tunnels")
        XCTAssertEqual(anonymous.status.code, 401)
    }

    func testBadParametersAre400NamingTheValue() async throws {
        let jwt = try await token(.operator)
        for (query, named) in [("limit=0", "'0'"), ("limit=1001", "'1001'"), ("limit=ten", "'ten'"), ("before=-3", "'-3'"),
                               ("before=x%20y", "'x y'")] {
            let response = try await client.get("/api/v1/tunnels?\(query)", bearerToken: jwt)
            XCTAssertEqual(response.status.code, 400, query)
            let problem = try XCTUnwrap(response.problem)
            XCTAssertTrue(problem.detail.contains(named), "\(query): \(problem.detail)")
        }
    }
}
