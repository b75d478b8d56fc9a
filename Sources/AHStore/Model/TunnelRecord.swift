import Foundation

/// A tunnel attempt as decided by the CONNECT ingress, for the audit.
public struct TunnelAttempt: Sendable, Equatable {
    public var subject: String?
    public var executorName: String
    public var port: Int
    public var remote: String
    /// `open` for an allowed tunnel (completed by `tunnelEnded`), else the refusal: the HTTP
    /// status as a string (`400`, `403`, `407`, ...).
    public var result: String
    public var detail: String

    public init(subject: String?, executorName: String, port: Int, remote: String, result: String, detail: String) {
        self.subject = subject
        self.executorName = executorName
        self.port = port
        self.remote = remote
        self.result = result
        self.detail = detail
    }

    /// A CONNECT request refused before it named a usable target (malformed request line,
    /// bad authority, oversized headers): result `400`. `target` is whatever the client sent
    /// as the authority, if anything (bounded when stored); `port` is 0 when it had none.
    public static func badRequest(target: String?, port: Int = 0, remote: String, detail: String) -> TunnelAttempt {
        TunnelAttempt(subject: nil, executorName: target ?? "", port: port, remote: remote, result: "400", detail: detail)
    }
}

/// One row of the tunnel audit.
public struct TunnelRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var subject: String?
    public var executorName: String
    public var port: Int
    public var remote: String
    public var startedAt: Date
    public var endedAt: Date?
    public var bytesUp: Int
    public var bytesDown: Int
    public var result: String
    public var detail: String
}

/// What one `pruneAudit` call deleted.
public struct AuditPruneResult: Sendable, Equatable {
    public var tunnels: Int
    public var history: Int

    public init(tunnels: Int, history: Int) {
        self.tunnels = tunnels
        self.history = history
    }

    public var total: Int { tunnels + history }
}
