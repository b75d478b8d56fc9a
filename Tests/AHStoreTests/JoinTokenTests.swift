@testable import AHStore
import Foundation
import XCTest

final class JoinTokenTests: XCTestCase {
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

    func testRedeemingTakesOneUseAndReturnsTheTokenTags() throws {
        try store.createJoinToken(id: "tok1", hash: fakeHash("s1"), expiresAt: at(3600), uses: 2,
                                  tags: ["pool": "linux", "arch": "x86_64"], now: t0)
        let grant = try store.redeemJoinToken(hash: fakeHash("s1"), now: at(10))
        XCTAssertEqual(grant, JoinTokenGrant(tokenID: "tok1", tags: ["pool": "linux", "arch": "x86_64"],
                                             usesLeft: 1, expiresAt: at(3600)))
        XCTAssertEqual(try store.joinToken(id: "tok1")?.usesLeft, 1)
        XCTAssertEqual(try store.redeemJoinToken(hash: fakeHash("s1"), now: at(20)).usesLeft, 0)
    }

    func testRedeemingBeyondTheUsesIsRefused() throws {
        try store.createJoinToken(id: "once", hash: fakeHash("s"), expiresAt: at(3600), uses: 1, tags: [:], now: t0)
        _ = try store.redeemJoinToken(hash: fakeHash("s"), now: at(1))
        XCTAssertThrowsError(try store.redeemJoinToken(hash: fakeHash("s"), now: at(2))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .tokenUsedUp(id: "once"))
        }
        XCTAssertEqual(try store.joinToken(id: "once")?.usesLeft, 0)
    }

    /// Two threads, each with its own connection (like two processes), race for a 5-use token.
    func testConcurrentRedemptionsGrantExactlyTheAvailableUses() throws {
        try store.createJoinToken(id: "five", hash: fakeHash("race"), expiresAt: at(3600), uses: 5, tags: [:], now: t0)
        let stores = [try fixture.openTables(), try fixture.openTables()]
        let outcomes = LockedCounter()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for _ in 0..<20 {
                do {
                    _ = try stores[worker].redeemJoinToken(hash: fakeHash("race"), now: at(5))
                    outcomes.add("granted")
                } catch IdentityStoreError.tokenUsedUp {
                    outcomes.add("used-up")
                } catch {
                    outcomes.add("other")
                    XCTFail("unexpected \(error)")
                }
            }
        }
        XCTAssertEqual(outcomes["granted"], 5)
        XCTAssertEqual(outcomes["used-up"], 35)
        XCTAssertEqual(outcomes["other"], 0)
        XCTAssertEqual(try store.joinToken(id: "five")?.usesLeft, 0)
        stores.forEach { $0.database.close() }
    }

    /// The same race through one shared store (one connection, many tasks).
    func testConcurrentTasksOnOneStoreGrantExactlyTheAvailableUses() async throws {
        let store = self.store!
        try store.createJoinToken(id: "five", hash: fakeHash("race"), expiresAt: at(3600), uses: 5, tags: [:], now: t0)
        let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    do {
                        _ = try store.redeemJoinToken(hash: fakeHash("race"), now: at(5))
                        return true
                    } catch IdentityStoreError.tokenUsedUp {
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        XCTAssertEqual(granted, 5)
    }

    func testExpiredTokenIsRefusedAndUnchanged() throws {
        try store.createJoinToken(id: "old", hash: fakeHash("old"), expiresAt: at(60), uses: 3, tags: [:], now: t0)
        let before = try store.joinToken(id: "old")
        XCTAssertThrowsError(try store.redeemJoinToken(hash: fakeHash("old"), now: at(60))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .tokenExpired(id: "old", expiredAt: at(60)))
        }
        XCTAssertEqual(try store.joinToken(id: "old"), before)
        XCTAssertEqual(before?.usesLeft, 3)
        XCTAssertEqual(try store.redeemJoinToken(hash: fakeHash("old"), now: at(59)).usesLeft, 2, "valid until the instant it expires")
    }

    func testUnknownTokenIsRefused() throws {
        try store.createJoinToken(id: "real", hash: fakeHash("real"), expiresAt: at(60), uses: 1, tags: [:], now: t0)
        let historyBefore = try store.history(limit: 100)
        XCTAssertThrowsError(try store.redeemJoinToken(hash: fakeHash("guess"), now: at(1))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .tokenUnknown)
        }
        XCTAssertEqual(try store.joinToken(id: "real")?.usesLeft, 1)
        XCTAssertEqual(try store.history(limit: 100), historyBefore, "a failed redemption writes nothing")
    }

    func testRevokedTokenIsRefusedAndUnchanged() throws {
        try store.createJoinToken(id: "rev", hash: fakeHash("rev"), expiresAt: at(3600), uses: 2, tags: [:], now: t0)
        try store.revokeJoinToken(id: "rev", now: at(1))
        XCTAssertThrowsError(try store.redeemJoinToken(hash: fakeHash("rev"), now: at(2))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .tokenRevoked(id: "rev"))
        }
        let record = try XCTUnwrap(store.joinToken(id: "rev"))
        XCTAssertTrue(record.revoked)
        XCTAssertEqual(record.usesLeft, 2)
        XCTAssertFalse(record.isRedeemable(at: at(2)))
        XCTAssertThrowsError(try store.revokeJoinToken(id: "nope", now: at(3))) { error in
            XCTAssertEqual(error as? IdentityStoreError, .tokenIDUnknown(id: "nope"))
        }
    }

    func testDuplicateIdOrSecretIsRefused() throws {
        try store.createJoinToken(id: "a", hash: fakeHash("x"), expiresAt: at(60), uses: 1, tags: [:], now: t0)
        XCTAssertThrowsError(try store.createJoinToken(id: "a", hash: fakeHash("y"), expiresAt: at(60), uses: 1, tags: [:], now: t0)) {
            XCTAssertEqual($0 as? IdentityStoreError, .tokenExists(id: "a"))
        }
        XCTAssertThrowsError(try store.createJoinToken(id: "b", hash: fakeHash("x"), expiresAt: at(60), uses: 1, tags: [:], now: t0)) {
            XCTAssertEqual($0 as? IdentityStoreError, .tokenExists(id: "b"))
        }
        XCTAssertEqual(try store.listJoinTokens().map(\.id), ["a"])
    }

    func testInvalidTokenParametersAreRefused() throws {
        let cases: [(String, [UInt8], Date, Int)] = [
            ("zero-uses", fakeHash("1"), at(60), 0),
            ("past", fakeHash("2"), t0, 1),
            ("bad id!", fakeHash("3"), at(60), 1),
            ("", fakeHash("4"), at(60), 1),
            ("nohash", [], at(60), 1),
        ]
        for (id, hash, expiry, uses) in cases {
            XCTAssertThrowsError(try store.createJoinToken(id: id, hash: hash, expiresAt: expiry, uses: uses, tags: [:], now: t0)) { error in
                guard case .invalidArgument = error as? IdentityStoreError else { return XCTFail("\(id): \(error)") }
            }
        }
        XCTAssertEqual(try store.listJoinTokens(), [])
    }

    func testTokenCreationIsInTheHistoryWithoutTheSecret() throws {
        try store.createJoinToken(id: "t1", hash: fakeHash("secret-material"), expiresAt: at(3600), uses: 3,
                                  tags: ["pool": "mac"], now: t0)
        let entry = try XCTUnwrap(store.history(limit: 1).first)
        XCTAssertEqual(entry.kind, .tokenCreated)
        XCTAssertTrue(entry.detail.contains("t1") && entry.detail.contains("3 use") && entry.detail.contains("pool=mac"), entry.detail)
        XCTAssertFalse(entry.detail.contains("secret"))
        let listed = try store.listJoinTokens()
        XCTAssertEqual(listed, [JoinTokenRecord(id: "t1", createdAt: t0, expiresAt: at(3600), usesLeft: 3,
                                                tags: ["pool": "mac"], revoked: false)])
    }

    func testRefusalsHaveDistinctReasonsAndReadableDescriptions() {
        let errors: [IdentityStoreError] = [.tokenUnknown, .tokenExpired(id: "t", expiredAt: t0), .tokenUsedUp(id: "t"), .tokenRevoked(id: "t")]
        XCTAssertEqual(Set(errors.map(\.reason)).count, errors.count)
        XCTAssertEqual(Set(errors.map(\.description)).count, errors.count)
        XCTAssertTrue(IdentityStoreError.tokenExpired(id: "t", expiredAt: t0).description.contains("2023-11-14T22:13:20Z"))
        XCTAssertTrue(IdentityStoreError.tokenUsedUp(id: "t").description.contains("no uses left"))
    }
}
