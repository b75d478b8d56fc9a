import AHAPI
import AHStore

/// Where `GET /api/v1/tunnels` reads the tunnel audit: the state store.
public protocol TunnelAuditSource: Sendable {
    /// Rows with an id below `before` (all when nil), newest first, at most `limit`.
    func tunnelPage(before: Int64?, limit: Int) async throws -> [TunnelRecord]
}

extension StateStore: TunnelAuditSource {}

extension HTTPAPIRoutes {
    /// Page size when `?limit=` is absent, and the most one page may hold.
    static let defaultTunnelPage = 100
    static let maxTunnelPage = 1000

    /// `GET /api/v1/tunnels[?limit=N][&before=ID]`: the newest N audit rows below ID, with the
    /// path of the next (older) page while there may be one.
    func listTunnels(_ request: HTTPAPIRequest) async -> HTTPAPIResponse {
        guard let tunnelAudit else { return .problem(.notFound("the tunnel audit is not served on this listener")) }
        var limit = Self.defaultTunnelPage
        if let text = request.query("limit") {
            guard let value = Int(text), (1...Self.maxTunnelPage).contains(value) else {
                return .problem(.badRequest("limit '\(text.prefix(40))' must be a whole number from 1 to \(Self.maxTunnelPage)"))
            }
            limit = value
        }
        var before: Int64?
        if let text = request.query("before") {
            guard let value = Int64(text), value > 0 else {
                return .problem(.badRequest("before '\(text.prefix(40))' must be a tunnel id (a positive whole number)"))
            }
            before = value
        }
        let records: [TunnelRecord]
        do {
            records = try await tunnelAudit.tunnelPage(before: before, limit: limit)
        } catch {
            logger.error("reading the tunnel audit failed", metadata: ["error": "\(error)"])
            return .problem(.internalError("the tunnel audit is unavailable"))
        }
        let items = records.map { record in
            TunnelAuditView(id: record.id, subject: record.subject, executor: record.executorName, port: record.port,
                            remote: record.remote, startedAt: ISO8601.string(from: record.startedAt),
                            endedAt: record.endedAt.map(ISO8601.string(from:)), bytesUp: record.bytesUp,
                            bytesDown: record.bytesDown, result: record.result, detail: record.detail)
        }
        // A full page may have older rows behind it; a short one is the last.
        let next = items.count == limit ? items.last.map { "/api/v1/tunnels?limit=\(limit)&before=\($0.id)" } : nil
        return .json(TunnelAuditPage(items: items, next: next))
    }
}
