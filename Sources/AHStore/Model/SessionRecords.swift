import Foundation

/// One leader event as the access point stores and serves it.
public struct StoredEvent: Sendable, Equatable {
    public let session: String
    public let seq: Int64
    public let type: String
    public let ts: String
    /// The event's JSON object as the leader sent it (one line).
    public let json: String

    public init(session: String, seq: Int64, type: String, ts: String, json: String) {
        self.session = session
        self.seq = seq
        self.type = type
        self.ts = ts
        self.json = json
    }
}

/// A leader session the access point knows: who leads it (the executor that sent its first
/// event) and how far its events go.
public struct SessionRecord: Sendable, Equatable {
    public let id: String
    public let leader: String
    public let startedAt: Date
    public let updatedAt: Date
    public let lastSeq: Int64
    /// When the leader said the session ended (nil while it may still send).
    public let endedAt: Date?
}

/// What storing a batch of events did.
public enum EventAppendOutcome: Sendable, Equatable {
    /// Stored; every seq up to this one is held. Events already held were skipped.
    case stored(lastSeq: Int64)
    /// The session belongs to another executor (named).
    case notOwner(leader: String)
    /// The batch does not continue the stored seqs: `expected` is the next seq the store needs.
    case gap(expected: Int64, got: Int64)
}
