import AHLeader
import AHTestSupport
import Foundation
import XCTest

/// The ACL's `read` verb, applied to a session's leader executor, decides which sessions a
/// subject sees: listed, readable, streamable — or, for the others, not there at all.
final class SessionEventsACLTests: XCTestCase {
    func testReadOnTheLeaderDecidesWhichSessionsASubjectSees() async throws {
        try Requirement.sshd()
        let directory = try TemporaryDirectory(prefix: "ah-events-acl")
        let config = directory.file("serve.toml").path
        try """
            [[serve.acl]]
            subject = "alice"
            executors = ["lead"]
            verbs = ["read"]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let fixture = try SessionEventsFixture(serveArguments: ["--config", config])
        do {
            try await check(fixture)
        } catch {
            await fixture.stop()
            throw error
        }
        await fixture.stop()
    }

    private func check(_ fixture: SessionEventsFixture) async throws {
        try await fixture.start(executors: ["lead", "other"])
        var pushers: [(EventJournal, EventPusher)] = []
        for (executor, session) in [("lead", "s-lead"), ("other", "s-other")] {
            let (journal, pusher) = try fixture.leader(executor, session: session, journal: executor)
            journal.append("hostLog", ["host": .string("h"), "stream": .string("stdout"), "text": .string("from \(executor)")])
            pusher.start()
            try await fixture.waitDelivered(pusher, 1)
            pushers.append((journal, pusher))
        }
        let alice = try await fixture.tunnels.userToken("alice", role: "viewer").jwt
        let bob = try await fixture.tunnels.userToken("bob", role: "viewer").jwt
        let admin = try await fixture.tunnels.userToken("root", role: "admin").jwt

        func ids(_ token: String) async throws -> Set<String> {
            let list = try await fixture.json("/api/v1/sessions", token: token)
            return Set((list["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        }
        let aliceSees = try await ids(alice)
        let bobSees = try await ids(bob)
        let adminSees = try await ids(admin)
        XCTAssertEqual(aliceSees, ["s-lead"])
        XCTAssertEqual(bobSees, [])
        XCTAssertEqual(adminSees, ["s-lead", "s-other"])

        let readable = try await fixture.get("/api/v1/sessions/s-lead/events", token: alice, headers: ["Accept: application/json"])
        XCTAssertEqual(readable.status, 200)
        XCTAssertTrue(String(decoding: readable.body, as: UTF8.self).contains("from lead"))
        for path in ["/api/v1/sessions/s-other/info", "/api/v1/sessions/s-other/events"] {
            let hidden = try await fixture.get(path, token: alice)
            XCTAssertEqual(hidden.status, 404, path)
            XCTAssertFalse(String(decoding: hidden.body, as: UTF8.self).contains("from other"))
        }
        for (journal, pusher) in pushers {
            await pusher.stop()
            await journal.close()
        }
    }
}
