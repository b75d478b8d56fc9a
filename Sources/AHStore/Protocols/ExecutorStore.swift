import AHSPIFFE
import Foundation

/// The executor registry of record: enrollments, renewals, revocations, last-seen times, and
/// notification of changes (see `TokenStore` for the conventions shared by all aggregates).
///
/// Refusals are *not* written by the failing call; the caller records them with
/// `AuditStore.recordHistory(kind: .refused, ...)` along with its log line, which also covers
/// refusals decided before the store is asked (bad CSR, bad name).
public protocol ExecutorStore: Sendable {
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

    /// Moves the last-seen time forward (on connect and disconnect; it never moves back).
    /// Queued behind earlier writes and returns at once: a failure (e.g. an unknown name) is
    /// logged by the store, not reported here.
    func touch(name: String, lastSeen: Date)

    /// Tells the caller when executors may have changed, so that it re-reads them (e.g. to
    /// drop the connection of an executor revoked by `ah executors revoke` in another
    /// process). The stream yields `.watching` first, once the watch is in place (read the
    /// current state then, and nothing between that read and later changes is missed), then
    /// `.local` after each enrollment, renewal or revocation made through this store, and
    /// `.external` when another connection (another process) committed to the state. It
    /// ends when the store closes or the consumer stops iterating. How quickly `.external`
    /// follows a change is the backend's business (SQLite: a cheap `PRAGMA data_version`
    /// check at the store's change-check interval; PostgreSQL: LISTEN/NOTIFY).
    func executorChanges() -> AsyncStream<ExecutorsChange>
}

extension ExecutorStore {
    public func recordRenewal(name: String, certSerial: String, certNotAfter: Date, now: Date) async throws {
        try await recordRenewal(name: name, certSerial: certSerial, certNotAfter: certNotAfter, publicKeySHA256: nil, now: now)
    }
}

/// One element of `ExecutorStore.executorChanges()`.
public enum ExecutorsChange: Sendable, Equatable {
    /// The watch has started: read the current state now.
    case watching
    /// This store enrolled, renewed or revoked the named executor.
    case local(name: String)
    /// Another connection or process changed the state (which rows is unknown: re-read).
    case external
}
