import AHAPI
import AHStore

/// Where `GET /api/v1/executors` gets its items. The access point implements it by merging the
/// store's records with its live connection registry (which alone knows connected/degraded);
/// `StoreExecutorDirectory` is the store-only version.
public protocol ExecutorDirectory: Sendable {
    /// Every executor to list, in the order to list them.
    func executors() async throws -> [ExecutorView]
}

/// The registry of record without live state: every enrolled executor is `offline`.
/// Useful in tests and as a fallback before the live registry exists. Revoked executors are
/// left out: they can no longer connect, so they are not part of the fleet.
public struct StoreExecutorDirectory: ExecutorDirectory {
    public let store: any ExecutorStore

    public init(store: any ExecutorStore) {
        self.store = store
    }

    public func executors() async throws -> [ExecutorView] {
        try await store.listExecutors()
            .filter { !$0.isRevoked }
            .map { ExecutorView(record: $0, state: .offline) }
    }
}
