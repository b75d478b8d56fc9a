import Foundation

/// Durable part of the live registry: the facts each executor last reported (as the JSON of
/// its Hello), and the audit of tunnel attempts. Kept beside `IdentityStore` in the same
/// state file, behind its own small protocol for the same reason (a PostgreSQL backend later).
public protocol RegistryStore: Sendable {
    /// Replaces the executor's facts.
    func recordFacts(name: String, factsJSON: String, now: Date) async throws

    /// Every executor's last facts, by name.
    func allFacts() async throws -> [String: ExecutorFacts]

    /// Records a tunnel attempt when it is decided; returns its id. `result` is `open` for an
    /// allowed one (completed by `tunnelEnded`), or the refusal (e.g. `403`).
    func tunnelStarted(_ attempt: TunnelAttempt, now: Date) async throws -> Int64

    func tunnelEnded(id: Int64, bytesUp: Int, bytesDown: Int, result: String, detail: String, now: Date) async throws

    /// Newest first.
    func tunnels(executorName: String?, limit: Int) async throws -> [TunnelRecord]
}

public struct ExecutorFacts: Sendable, Equatable {
    public var json: String
    public var reportedAt: Date

    public init(json: String, reportedAt: Date) {
        self.json = json
        self.reportedAt = reportedAt
    }
}

public struct TunnelAttempt: Sendable, Equatable {
    public var subject: String?
    public var executorName: String
    public var port: Int
    public var remote: String
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
}

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
