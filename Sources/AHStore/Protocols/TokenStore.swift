import Foundation

/// Join tokens: minted by operators, redeemed by enrolling executors.
///
/// Like every aggregate protocol of the state store (`ExecutorStore`, `FactsStore`,
/// `AuditStore`), requirements are `async` and must not block the caller's thread: the
/// SQLite backend (`StateStore`) runs them on its own worker thread, a networked backend
/// (PostgreSQL, for several access points sharing state) on its connection. Every mutating
/// operation is atomic: it applies completely (including its history row) or throws and
/// changes nothing. Times are passed in (`now`) so that tests and replicas agree on the clock.
public protocol TokenStore: Sendable {
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
}
