/// One row of `GET /api/v1/tunnels`: a CONNECT attempt as audited, allowed or refused.
/// Absent values are `null`, not omitted, so that clients see a stable shape.
public struct TunnelAuditView: Sendable, Equatable, Codable {
    /// Increases with every attempt; pages are cut by it (`?before=ID`).
    public var id: Int64
    /// Who asked (the token's subject), or nil when refused before a token was verified.
    public var subject: String?
    public var executor: String
    public var port: Int
    /// The client's `host:port`.
    public var remote: String
    /// ISO 8601 (UTC, whole seconds).
    public var startedAt: String
    /// ISO 8601, or nil while the tunnel is open.
    public var endedAt: String?
    public var bytesUp: Int
    public var bytesDown: Int
    /// `open` while open; `closed`, `aborted`, `abandoned` when it ended; else the refusal's
    /// HTTP status (`400`, `403`, `407`, ...).
    public var result: String
    public var detail: String

    public init(id: Int64, subject: String?, executor: String, port: Int, remote: String, startedAt: String,
                endedAt: String?, bytesUp: Int, bytesDown: Int, result: String, detail: String) {
        self.id = id
        self.subject = subject
        self.executor = executor
        self.port = port
        self.remote = remote
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
        self.result = result
        self.detail = detail
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(subject, forKey: .subject)
        try container.encode(executor, forKey: .executor)
        try container.encode(port, forKey: .port)
        try container.encode(remote, forKey: .remote)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(endedAt, forKey: .endedAt)
        try container.encode(bytesUp, forKey: .bytesUp)
        try container.encode(bytesDown, forKey: .bytesDown)
        try container.encode(result, forKey: .result)
        try container.encode(detail, forKey: .detail)
    }
}

/// A page of `GET /api/v1/tunnels`, newest first. `next` is the path of the following (older)
/// page, or nil when this page is the last.
public struct TunnelAuditPage: Sendable, Equatable, Codable {
    public var items: [TunnelAuditView]
    public var next: String?

    public init(items: [TunnelAuditView], next: String?) {
        self.items = items
        self.next = next
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(next, forKey: .next)
    }
}
