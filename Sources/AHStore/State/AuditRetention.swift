import Foundation
import Logging

/// How long audit rows (tunnel attempts and identity history) are kept, and how pruning
/// paces itself. Every unauthenticated probe of the CONNECT port or the enrollment ALPN
/// leaves a row, so without a bound the state file grows with the internet's background noise.
public struct AuditRetention: Sendable, Equatable {
    /// 30 days.
    public static let defaultMaxAge: Duration = .seconds(30 * 24 * 3600)

    /// Rows older than this are deleted. Must be positive.
    public var maxAge: Duration
    /// Time between pruning rounds (the first runs at start).
    public var interval: Duration
    /// Rows per table deleted by one transaction: short transactions keep the writer
    /// available to the requests queued behind a prune.
    public var batchSize: Int
    /// Batches per round; what is left waits for the next round, so one round's work is
    /// bounded even after a long outage or a lowered `maxAge`.
    public var maxBatchesPerRound: Int

    public init(maxAge: Duration = defaultMaxAge, interval: Duration = .seconds(3600), batchSize: Int = 500,
                maxBatchesPerRound: Int = 20) {
        self.maxAge = maxAge
        self.interval = interval
        self.batchSize = batchSize
        self.maxBatchesPerRound = maxBatchesPerRound
    }
}

/// Applies an `AuditRetention` to an `AuditStore`: one round at start, then one per interval.
public enum AuditPruner {
    /// Runs until the task is cancelled (or the store closes).
    public static func run(store: any AuditStore, retention: AuditRetention, logger: Logger,
                           now: @escaping @Sendable () -> Date = { Date() }) async {
        while !Task.isCancelled {
            do {
                let pruned = try await pruneRound(store: store, retention: retention, now: now())
                if pruned.total > 0 {
                    logger.info("pruned audit rows past their retention", metadata: [
                        "tunnels": "\(pruned.tunnels)", "history": "\(pruned.history)", "retention": "\(retention.maxAge)"])
                }
            } catch is StateStoreClosed {
                return
            } catch is CancellationError {
                return
            } catch {
                logger.error("cannot prune the audit", metadata: ["error": "\(error)"])
            }
            do {
                try await Task.sleep(for: retention.interval)
            } catch {
                return
            }
        }
    }

    /// One round: batches of `batchSize` until a batch comes back short or
    /// `maxBatchesPerRound` ran. Returns what was deleted.
    public static func pruneRound(store: any AuditStore, retention: AuditRetention, now: Date) async throws -> AuditPruneResult {
        let cutoff = now.addingTimeInterval(-retention.maxAge.timeInterval)
        var total = AuditPruneResult(tunnels: 0, history: 0)
        for _ in 0..<max(retention.maxBatchesPerRound, 1) {
            let batch = try await store.pruneAudit(before: cutoff, limit: retention.batchSize)
            total.tunnels += batch.tunnels
            total.history += batch.history
            if batch.tunnels < retention.batchSize && batch.history < retention.batchSize { break }
            try Task.checkCancellation()
        }
        return total
    }
}
