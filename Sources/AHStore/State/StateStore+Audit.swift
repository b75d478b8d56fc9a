import Foundation

extension StateStore: AuditStore {
    public func recordHistory(kind: HistoryKind, name: String?, spiffeID: String?, detail: String, now: Date) {
        enqueue("history row \(kind.rawValue.prefix(64))") {
            try $0.recordHistory(kind: kind, name: name, spiffeID: spiffeID, detail: detail, now: now)
        }
    }

    public func history(executorName: String?, limit: Int) async throws -> [HistoryEntry] {
        try await run { try $0.history(executorName: executorName, limit: limit) }
    }

    @discardableResult
    public func tunnelStarted(_ attempt: TunnelAttempt, now: Date) -> Int64 {
        let id = nextTunnelID()
        enqueue("tunnel audit row \(id)") { try $0.insertTunnel(id: id, attempt, now: now) }
        return id
    }

    public func tunnelEnded(id: Int64, bytesUp: Int, bytesDown: Int, result: String, detail: String, now: Date) {
        enqueue("end of tunnel audit row \(id)") {
            try $0.tunnelEnded(id: id, bytesUp: bytesUp, bytesDown: bytesDown, result: result, detail: detail, now: now)
        }
    }

    public func tunnels(executorName: String?, limit: Int) async throws -> [TunnelRecord] {
        try await run { try $0.tunnels(executorName: executorName, limit: limit) }
    }

    public func pruneAudit(before cutoff: Date, limit: Int) async throws -> AuditPruneResult {
        try await run { try $0.pruneAudit(before: cutoff, limit: limit) }
    }
}
