import AHSPIFFE
@testable import AHStore
import Foundation
import XCTest

final class EnrollmentTests: XCTestCase {
    private var fixture: StoreFixture!
    private var store: StateTables!

    override func setUpWithError() throws {
        fixture = try StoreFixture()
        store = try fixture.openTables()
    }

    override func tearDown() {
        store.database.close()
        store = nil
        fixture = nil
    }

    @discardableResult
    private func enroll(_ name: String, key: String, serial: String = "01", tags: [String: String] = [:],
                        at time: Date = t0) throws -> EnrollmentResult {
        try store.enroll(name: name, spiffeID: try agentID(name), publicKeySHA256: fakeHash(key), tags: tags,
                         certSerial: serial, certNotAfter: time.addingTimeInterval(3600), now: time)
    }

    func testEnrollingANewExecutor() throws {
        let result = try enroll("node1", key: "k1", tags: ["os": "linux"])
        XCTAssertEqual(result.kind, .new)
        XCTAssertNil(result.grant)
        let expected = ExecutorRecord(name: "node1", spiffeID: "spiffe://example.org/ah/agent/node1",
                                      publicKeySHA256: fakeHash("k1"), tags: ["os": "linux"], certSerial: "01",
                                      certNotAfter: at(3600), enrolledAt: t0, lastSeen: t0, revokedAt: nil, revokeReason: nil)
        XCTAssertEqual(result.executor, expected)
        XCTAssertEqual(try store.executor(named: "node1"), expected)
        XCTAssertFalse(try store.isRevoked(name: "node1"))
        let history = try store.history(limit: 10)
        XCTAssertEqual(history.map(\.kind), [.enrolled])
        XCTAssertEqual(history.first?.executorName, "node1")
        XCTAssertEqual(history.first?.spiffeID, "spiffe://example.org/ah/agent/node1")
        XCTAssertTrue(history.first?.detail.contains("new executor") ?? false)
        XCTAssertTrue(history.first?.detail.contains("sha256:" + result.executor.publicKeyFingerprint.dropFirst(7)) ?? false)
    }

    func testANameEnrolledToAnotherKeyIsRefusedAndUnchanged() throws {
        try enroll("node1", key: "k1")
        let before = try store.executor(named: "node1")
        XCTAssertThrowsError(try enroll("node1", key: "intruder", serial: "02", at: at(10))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .nameTaken("node1"))
            XCTAssertTrue("\(error)".contains("ah executors revoke node1"), "\(error)")
        }
        XCTAssertEqual(try store.executor(named: "node1"), before)
        XCTAssertEqual(try store.history(limit: 10).count, 1, "the refusal itself is recorded by the caller")
    }

    func testTheSameKeyReEnrolls() throws {
        try enroll("node1", key: "k1", tags: ["a": "1"])
        let again = try enroll("node1", key: "k1", serial: "02", tags: ["a": "2"], at: at(100))
        XCTAssertEqual(again.kind, .sameKey)
        XCTAssertEqual(again.executor.certSerial, "02")
        XCTAssertEqual(again.executor.tags, ["a": "2"])
        XCTAssertEqual(again.executor.enrolledAt, at(100))
        XCTAssertTrue(try store.history(limit: 1).first?.detail.contains("same key") ?? false)
    }

    func testRevokeThenReEnrollWithANewKeyIsRecordedStepByStep() throws {
        try enroll("node1", key: "k1")
        XCTAssertTrue(try store.revoke(name: "node1", reason: "laptop stolen", now: at(50)))
        XCTAssertTrue(try store.isRevoked(name: "node1"))
        let revoked = try XCTUnwrap(store.executor(named: "node1"))
        XCTAssertEqual(revoked.revokedAt, at(50))
        XCTAssertEqual(revoked.revokeReason, "laptop stolen")

        // Revoked identities cannot renew.
        XCTAssertThrowsError(try store.recordRenewal(name: "node1", certSerial: "09", certNotAfter: at(9000), now: at(60))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .executorRevoked("node1", reason: "laptop stolen"))
        }

        let again = try enroll("node1", key: "k2", serial: "03", at: at(100))
        XCTAssertEqual(again.kind, .afterRevocation)
        XCTAssertFalse(again.executor.isRevoked)
        XCTAssertNil(again.executor.revokeReason)
        XCTAssertEqual(again.executor.publicKeySHA256, fakeHash("k2"))
        XCTAssertFalse(try store.isRevoked(name: "node1"))

        let history = try store.history(executorName: "node1", limit: 10).reversed().map { $0 }
        XCTAssertEqual(history.map(\.kind), [.enrolled, .revoked, .enrolled])
        XCTAssertEqual(history.map(\.at), [t0, at(50), at(100)])
        XCTAssertTrue(history[1].detail.contains("laptop stolen"), history[1].detail)
        XCTAssertTrue(history[2].detail.contains("after revocation") && history[2].detail.contains("laptop stolen"), history[2].detail)
        XCTAssertTrue(history[2].detail.contains("sha256:" + String(again.executor.publicKeyFingerprint.dropFirst(7))))
    }

    func testRevokingIsIdempotentAndKeepsTheFirstReason() throws {
        try enroll("node1", key: "k1")
        XCTAssertTrue(try store.revoke(name: "node1", reason: "first", now: at(1)))
        XCTAssertFalse(try store.revoke(name: "node1", reason: "second", now: at(2)))
        XCTAssertEqual(try store.executor(named: "node1")?.revokeReason, "first")
        XCTAssertEqual(try store.executor(named: "node1")?.revokedAt, at(1))
        XCTAssertEqual(try store.history(limit: 10).filter { $0.kind == .revoked }.count, 1)
        XCTAssertThrowsError(try store.revoke(name: "ghost", reason: "x", now: at(3))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .unknownExecutor("ghost"))
        }
        XCTAssertFalse(try store.isRevoked(name: "ghost"))
    }

    func testRenewalUpdatesTheCertificateAndIsRecorded() throws {
        try enroll("node1", key: "k1")
        try store.recordRenewal(name: "node1", certSerial: "0a", certNotAfter: at(7200), now: at(1800))
        var record = try XCTUnwrap(store.executor(named: "node1"))
        XCTAssertEqual(record.certSerial, "0a")
        XCTAssertEqual(record.certNotAfter, at(7200))
        XCTAssertEqual(record.lastSeen, at(1800))
        XCTAssertEqual(record.publicKeySHA256, fakeHash("k1"))

        try store.recordRenewal(name: "node1", certSerial: "0b", certNotAfter: at(9000),
                                publicKeySHA256: fakeHash("k1-rotated"), now: at(3600))
        record = try XCTUnwrap(store.executor(named: "node1"))
        XCTAssertEqual(record.publicKeySHA256, fakeHash("k1-rotated"))
        let latest = try XCTUnwrap(store.history(limit: 1).first)
        XCTAssertEqual(latest.kind, .renewed)
        XCTAssertTrue(latest.detail.contains("0b") && latest.detail.contains("key rotated"), latest.detail)

        XCTAssertThrowsError(try store.recordRenewal(name: "ghost", certSerial: "1", certNotAfter: at(1), now: t0)) { error in
            XCTAssertEqual(error as? IdentityStoreError, .unknownExecutor("ghost"))
        }
    }

    func testRedeemAndEnrollBindsTheTokenTags() throws {
        try store.createJoinToken(id: "tok", hash: fakeHash("secret"), expiresAt: at(3600), uses: 2,
                                  tags: ["pool": "ci", "owner": "ops"], now: t0)
        let result = try store.redeemAndEnroll(tokenHash: fakeHash("secret"), name: "node1", spiffeID: try agentID("node1"),
                                               publicKeySHA256: fakeHash("k1"), requestedTags: ["pool": "mine", "gpu": "yes"],
                                               certSerial: "01", certNotAfter: at(3600), now: at(5))
        XCTAssertEqual(result.kind, .new)
        XCTAssertEqual(result.grant?.tokenID, "tok")
        XCTAssertEqual(result.executor.tags, ["pool": "ci", "owner": "ops", "gpu": "yes"], "operator-bound tags win")
        XCTAssertEqual(try store.joinToken(id: "tok")?.usesLeft, 1)
        XCTAssertTrue(try store.history(limit: 1).first?.detail.contains("join token tok") ?? false)
    }

    func testARefusedEnrollmentDoesNotBurnATokenUse() throws {
        try enroll("node1", key: "k1")
        try store.createJoinToken(id: "tok", hash: fakeHash("secret"), expiresAt: at(3600), uses: 1, tags: [:], now: t0)
        let historyBefore = try store.history(limit: 100)
        XCTAssertThrowsError(try store.redeemAndEnroll(tokenHash: fakeHash("secret"), name: "node1", spiffeID: try agentID("node1"),
                                                       publicKeySHA256: fakeHash("other"), requestedTags: [:],
                                                       certSerial: "02", certNotAfter: at(3600), now: at(5))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .nameTaken("node1"))
        }
        XCTAssertEqual(try store.joinToken(id: "tok")?.usesLeft, 1)
        XCTAssertEqual(try store.history(limit: 100), historyBefore)
        // The use is still there for a legitimate enrollment.
        XCTAssertEqual(try store.redeemAndEnroll(tokenHash: fakeHash("secret"), name: "node2", spiffeID: try agentID("node2"),
                                                 publicKeySHA256: fakeHash("k2"), requestedTags: [:],
                                                 certSerial: "03", certNotAfter: at(3600), now: at(6)).grant?.usesLeft, 0)
    }

    func testARefusedTokenEnrollsNothing() throws {
        try store.createJoinToken(id: "tok", hash: fakeHash("secret"), expiresAt: at(60), uses: 1, tags: [:], now: t0)
        XCTAssertThrowsError(try store.redeemAndEnroll(tokenHash: fakeHash("secret"), name: "node1", spiffeID: try agentID("node1"),
                                                       publicKeySHA256: fakeHash("k1"), requestedTags: [:],
                                                       certSerial: "01", certNotAfter: at(3600), now: at(61))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .tokenExpired(id: "tok", expiredAt: at(60)))
        }
        XCTAssertNil(try store.executor(named: "node1"))
    }

    func testInvalidNamesAreRefused() throws {
        for name in ["", "a/b", "..", "white space"] {
            XCTAssertThrowsError(try store.enroll(name: name, spiffeID: try agentID("ok"), publicKeySHA256: fakeHash("k"),
                                                  tags: [:], certSerial: "01", certNotAfter: at(60), now: t0)) { error in
                guard case .invalidArgument = error as? IdentityStoreError else { return XCTFail("\(name): \(error)") }
            }
        }
        XCTAssertEqual(try store.listExecutors(), [])
    }

    func testTouchListAndLastSeenNeverGoesBackwards() throws {
        try enroll("b-node", key: "kb")
        try enroll("a-node", key: "ka")
        try store.touch(name: "a-node", lastSeen: at(100))
        try store.touch(name: "a-node", lastSeen: at(50))
        XCTAssertEqual(try store.executor(named: "a-node")?.lastSeen, at(100))
        XCTAssertEqual(try store.listExecutors().map(\.name), ["a-node", "b-node"])
        XCTAssertThrowsError(try store.touch(name: "ghost", lastSeen: t0)) { error in
            XCTAssertEqual(error as? IdentityStoreError, .unknownExecutor("ghost"))
        }
    }

    func testRecordedRefusalsAreInTheHistoryNewestFirstAndBounded() throws {
        for index in 0..<5 {
            try store.recordHistory(kind: .refused, name: "n\(index)", spiffeID: nil,
                                    detail: "token-unknown: join token is not known", now: at(Double(index)))
        }
        try store.recordHistory(kind: .reconnectRefused, name: "n1", spiffeID: "spiffe://example.org/ah/agent/n1",
                                detail: String(repeating: "x", count: 5000), now: at(10))
        let latest = try store.history(limit: 3)
        XCTAssertEqual(latest.map(\.executorName), ["n1", "n4", "n3"])
        XCTAssertEqual(latest.first?.kind, .reconnectRefused)
        XCTAssertLessThan(latest.first?.detail.count ?? .max, 1100, "details are truncated")
        XCTAssertEqual(try store.history(executorName: "n1", limit: 10).map(\.kind), [.reconnectRefused, .refused])
        XCTAssertEqual(try store.history(limit: 0), [])
    }

    func testTheProtocolsAreUsableAsExistentials() async throws {
        let state = try await fixture.openStore()
        let tokens: any TokenStore = state
        let executors: any ExecutorStore = state
        let audit: any AuditStore = state
        try await tokens.createJoinToken(id: "tok", hash: fakeHash("s"), expiresAt: at(60), uses: 1, tags: ["k": "v"], now: t0)
        let result = try await executors.redeemAndEnroll(tokenHash: fakeHash("s"), name: "node1", spiffeID: try agentID("node1"),
                                                         publicKeySHA256: fakeHash("k1"), requestedTags: [:],
                                                         certSerial: "01", certNotAfter: at(3600), now: at(1))
        XCTAssertEqual(result.executor.tags, ["k": "v"])
        try await executors.recordRenewal(name: "node1", certSerial: "02", certNotAfter: at(7200), now: at(2))
        let revoked = try await executors.revoke(name: "node1", reason: "test", now: at(3))
        XCTAssertTrue(revoked)
        let isRevoked = try await executors.isRevoked(name: "node1")
        XCTAssertTrue(isRevoked)
        let kinds = try await audit.history(limit: 10).map(\.kind)
        XCTAssertEqual(kinds, [.revoked, .renewed, .enrolled, .tokenCreated])
        await state.close()
    }

    func testTwoConnectionsShareTheRegistry() throws {
        let other = try fixture.openTables()
        try enroll("node1", key: "k1")
        XCTAssertEqual(try other.executor(named: "node1")?.certSerial, "01")
        try other.revoke(name: "node1", reason: "revoked from another process", now: at(5))
        XCTAssertTrue(try store.isRevoked(name: "node1"))
        other.database.close()
    }
}
