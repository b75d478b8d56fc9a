import Foundation

/// The audit: identity history (enrollments, renewals, revocations, refusals) and tunnel
/// attempts (allowed or refused, with bytes and outcome), with retention.
///
/// Records are queued behind earlier writes and return at once, so that auditing never
/// delays the decision it records and an unauthenticated flood cannot park request tasks
/// on the database; a failed write is logged by the store.
public protocol AuditStore: Sendable {
    /// Appends a history row, e.g. a refused attempt with its reason.
    func recordHistory(kind: HistoryKind, name: String?, spiffeID: String?, detail: String, now: Date)

    /// The newest `limit` rows (newest first), optionally only those about one executor.
    func history(executorName: String?, limit: Int) async throws -> [HistoryEntry]

    /// Records a tunnel attempt when it is decided and returns its id: unique among every
    /// attempt this store records, whether or not the row could be written. `result` is
    /// `open` for an allowed tunnel (complete it with `tunnelEnded`), else the refusal's
    /// HTTP status (`400`, `403`, `407`, ...; see `TunnelAttempt.badRequest`).
    @discardableResult
    func tunnelStarted(_ attempt: TunnelAttempt, now: Date) -> Int64

    /// Completes an `open` attempt: bytes each way and how it ended (`closed`, `aborted`, ...).
    func tunnelEnded(id: Int64, bytesUp: Int, bytesDown: Int, result: String, detail: String, now: Date)

    /// Newest first.
    func tunnels(executorName: String?, limit: Int) async throws -> [TunnelRecord]

    /// Deletes up to `limit` tunnel rows and up to `limit` history rows older than `cutoff`,
    /// oldest first (bounded work per call; call again while it deletes full batches).
    func pruneAudit(before cutoff: Date, limit: Int) async throws -> AuditPruneResult
}

extension AuditStore {
    public func history(limit: Int) async throws -> [HistoryEntry] {
        try await history(executorName: nil, limit: limit)
    }
}
