import Foundation

/// Live state of an executor as the access point sees it right now.
public enum ExecutorState: String, Sendable, Codable, CaseIterable {
    /// Its QUIC connection is up and heartbeats arrive.
    case connected
    /// Connected, but heartbeats are late or the path is impaired.
    case degraded
    /// No connection (or never connected since the access point started).
    case offline
    /// Its identity was revoked (`ah executors revoke`): it can no longer connect or be tunnelled to.
    case revoked
}

/// One item of `GET /api/v1/executors`. The JSON keys are a public contract (cli.md):
/// `name, spiffeId, state, tags, certNotAfter, lastSeen`; absent times are `null`, not omitted,
/// so that clients see a stable shape.
public struct ExecutorView: Sendable, Equatable, Codable {
    public var name: String
    public var spiffeId: String
    public var state: ExecutorState
    public var tags: [String: String]
    /// ISO 8601 (UTC, whole seconds), or nil.
    public var certNotAfter: String?
    /// ISO 8601 (UTC, whole seconds), or nil.
    public var lastSeen: String?
    /// What the executor last said about itself (kept across its disconnects), or nil.
    public var facts: ExecutorFactsView?
    /// The last heartbeat of the live connection, or nil when offline.
    public var heartbeat: HeartbeatView?
    /// ISO 8601: since when the current connection is up, or nil when offline.
    public var connectedAt: String?

    public init(name: String, spiffeId: String, state: ExecutorState, tags: [String: String],
                certNotAfter: String?, lastSeen: String?, facts: ExecutorFactsView? = nil,
                heartbeat: HeartbeatView? = nil, connectedAt: String? = nil) {
        self.name = name
        self.spiffeId = spiffeId
        self.state = state
        self.tags = tags
        self.certNotAfter = certNotAfter
        self.lastSeen = lastSeen
        self.facts = facts
        self.heartbeat = heartbeat
        self.connectedAt = connectedAt
    }

    private enum CodingKeys: String, CodingKey {
        case name, spiffeId, state, tags, certNotAfter, lastSeen, facts, heartbeat, connectedAt
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        spiffeId = try container.decode(String.self, forKey: .spiffeId)
        state = try container.decode(ExecutorState.self, forKey: .state)
        tags = try container.decode([String: String].self, forKey: .tags)
        certNotAfter = try container.decodeIfPresent(String.self, forKey: .certNotAfter)
        lastSeen = try container.decodeIfPresent(String.self, forKey: .lastSeen)
        facts = try container.decodeIfPresent(ExecutorFactsView.self, forKey: .facts)
        heartbeat = try container.decodeIfPresent(HeartbeatView.self, forKey: .heartbeat)
        connectedAt = try container.decodeIfPresent(String.self, forKey: .connectedAt)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(spiffeId, forKey: .spiffeId)
        try container.encode(state, forKey: .state)
        try container.encode(tags, forKey: .tags)
        // Explicit nulls: the synthesized encoder would drop the keys.
        if let certNotAfter { try container.encode(certNotAfter, forKey: .certNotAfter) } else { try container.encodeNil(forKey: .certNotAfter) }
        if let lastSeen { try container.encode(lastSeen, forKey: .lastSeen) } else { try container.encodeNil(forKey: .lastSeen) }
        if let facts { try container.encode(facts, forKey: .facts) } else { try container.encodeNil(forKey: .facts) }
        if let heartbeat { try container.encode(heartbeat, forKey: .heartbeat) } else { try container.encodeNil(forKey: .heartbeat) }
        if let connectedAt { try container.encode(connectedAt, forKey: .connectedAt) } else { try container.encodeNil(forKey: .connectedAt) }
    }
}

/// The body of `GET /api/v1/executors`.
public struct ExecutorList: Sendable, Equatable, Codable {
    public var items: [ExecutorView]

    public init(items: [ExecutorView]) {
        self.items = items
    }
}

/// Timestamps in API bodies: ISO 8601 in UTC with whole seconds, e.g. `2025-01-31T12:00:00Z`.
public enum ISO8601 {
    public static func string(from date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }

    public static func date(from string: String) -> Date? {
        try? Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).parse(string)
    }
}
