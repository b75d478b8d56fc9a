import Foundation

extension StateStore {
    /// One page of the tunnel audit, newest first: the rows with an id below `before` (all when
    /// nil), at most `limit`. Behind every queued write, like every read of this store.
    public func tunnelPage(before: Int64?, limit: Int) async throws -> [TunnelRecord] {
        try await run { try $0.tunnelPage(before: before, limit: limit) }
    }
}
