import AHSPIFFE
import Foundation

/// Durable state behind enrollment and identity: join tokens, the executor registry of
/// record, and the identity history.
///
/// Requirements are `async` so that a networked backend (PostgreSQL, for several access
/// points sharing state) can implement them without blocking; `SQLiteIdentityStore` satisfies
/// them with synchronous methods, which callers holding the concrete type may call directly.
///
/// Every mutating operation is atomic: it either applies completely (including its history
/// row) or throws and changes nothing. Refusals are therefore *not* written by the failing
/// call; the caller records them with `recordHistory(kind: .refused, ...)` along with its log
/// line, which also covers refusals decided before the store is asked (bad CSR, bad name).
/// All times are passed in (`now`) so that tests and replicas agree on the clock.
public protocol IdentityStore: Sendable {
    // MARK: Join tokens

    /// Stores a new token. `hash` is the SHA-256 of the secret (computed by the caller; the
    /// secret itself is never stored). Throws `.tokenExists` when the id or hash is taken.
    func createJoinToken(id: String, hash: [UInt8], expiresAt: Date, uses: Int,
                         tags: [String: String], now: Date) async throws

    /// Atomically checks that the token exists, is not revoked, has not expired and has a use
    /// left, and takes one use. Throws `.tokenUnknown`, `.tokenRevoked`, `.tokenExpired` or
    /// `.tokenUsedUp` (changing nothing) otherwise.
    func redeemJoinToken(hash: [UInt8], now: Date) async throws -> JoinTokenGrant

    /// Makes the token unusable. Throws `.tokenIDUnknown` for an unknown id.
    func revokeJoinToken(id: String, now: Date) async throws

    func joinToken(id: String) async throws -> JoinTokenRecord?

    /// All tokens, newest first.
    func listJoinTokens() async throws -> [JoinTokenRecord]

    // MARK: Executors

    /// Records an enrollment. A name enrolled to another key that is not revoked is refused
    /// (`.nameTaken`); the same key re-enrolls; a revoked name re-enrolls with any key and the
    /// revocation is cleared.
    @discardableResult
    func enroll(name: String, spiffeID: SPIFFEID, publicKeySHA256: [UInt8], tags: [String: String],
                certSerial: String, certNotAfter: Date, now: Date) async throws -> EnrollmentResult

    /// Redeems a token and enrolls in one transaction, so that a refused enrollment (e.g. name
    /// taken) does not burn a use. The executor's tags are `requestedTags` overlaid with the
    /// token's tags: the operator's binding wins over what the executor asks for.
    @discardableResult
    func redeemAndEnroll(tokenHash: [UInt8], name: String, spiffeID: SPIFFEID, publicKeySHA256: [UInt8],
                         requestedTags: [String: String], certSerial: String, certNotAfter: Date,
                         now: Date) async throws -> EnrollmentResult

    /// Records a renewed certificate (and the new key, if the executor rotated it). Throws
    /// `.unknownExecutor` or `.executorRevoked`: a revoked identity cannot renew.
    func recordRenewal(name: String, certSerial: String, certNotAfter: Date,
                       publicKeySHA256: [UInt8]?, now: Date) async throws

    /// Revokes the identity: later renewals and reconnects are refused. Returns false (and
    /// records nothing) when it was already revoked. Throws `.unknownExecutor`.
    @discardableResult
    func revoke(name: String, reason: String, now: Date) async throws -> Bool

    /// Whether the named executor is revoked; false for unknown names.
    func isRevoked(name: String) async throws -> Bool

    func executor(named name: String) async throws -> ExecutorRecord?

    /// All executors, by name.
    func listExecutors() async throws -> [ExecutorRecord]

    /// Updates the last-seen time (on connect and heartbeat). Throws `.unknownExecutor`.
    func touch(name: String, lastSeen: Date) async throws

    // MARK: History

    /// Appends a history row, e.g. a refused attempt with its reason.
    func recordHistory(kind: HistoryKind, name: String?, spiffeID: String?, detail: String, now: Date) async throws

    /// The newest `limit` rows (newest first), optionally only those about one executor.
    func history(executorName: String?, limit: Int) async throws -> [HistoryEntry]
}

extension IdentityStore {
    public func history(limit: Int) async throws -> [HistoryEntry] {
        try await history(executorName: nil, limit: limit)
    }

    public func recordRenewal(name: String, certSerial: String, certNotAfter: Date, now: Date) async throws {
        try await recordRenewal(name: name, certSerial: certSerial, certNotAfter: certNotAfter, publicKeySHA256: nil, now: now)
    }
}
