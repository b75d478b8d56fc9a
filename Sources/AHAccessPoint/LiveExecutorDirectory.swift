import AHHTTP
import AHStore
import Foundation

/// `GET /api/v1/executors`: the store's records merged with the live registry. Connected
/// means a live authenticated connection right now (heartbeat-based "degraded" arrives
/// with the control stream); revoked executors are not listed.
public struct LiveExecutorDirectory: ExecutorDirectory {
    let store: any IdentityStore
    let registry: ExecutorRegistry

    public init(store: any IdentityStore, registry: ExecutorRegistry) {
        self.store = store
        self.registry = registry
    }

    public func executors() async throws -> [ExecutorView] {
        let live = registry.snapshot()
        return try await store.listExecutors()
            .filter { !$0.isRevoked }
            .sorted { $0.name < $1.name }
            .map { record in
                if let connection = live[record.name] {
                    return ExecutorView(record: record, state: .connected, lastSeen: connection.lastSeen)
                }
                return ExecutorView(record: record, state: .offline)
            }
    }
}
