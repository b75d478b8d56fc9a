import Foundation

/// Leader sessions and events (the uplink). Every call runs on the store's one worker
/// thread, so commits happen in order and `afterCommit` callbacks (the live SSE broadcast)
/// see events in exactly the order they were stored; a subscription made with `subscribe`
/// sits at a precise point of that order (see `subscribe`).
extension StateStore {
    public func openSession(_ id: String, leader: String) async throws -> EventAppendOutcome {
        try await run { try $0.openSession(id, leader: leader, now: Date()) }
    }

    /// Stores a batch (one transaction) and then, still on the worker, hands the newly
    /// stored events to `afterCommit` (nothing when none were new).
    public func appendEvents(_ id: String, leader: String, events: [StoredEvent],
                             afterCommit: @escaping @Sendable ([StoredEvent]) -> Void) async throws -> EventAppendOutcome {
        try await run { tables in
            let (outcome, fresh) = try tables.appendEvents(id, leader: leader, events: events, now: Date())
            if !fresh.isEmpty { afterCommit(fresh) }
            return outcome
        }
    }

    public func endSession(_ id: String, leader: String) async throws -> EventAppendOutcome {
        try await run { try $0.endSession(id, leader: leader, now: Date()) }
    }

    /// Runs `register` on the worker with the session's last stored seq (nil: unknown
    /// session). Everything committed before has seq ≤ that value; every later commit's
    /// `afterCommit` runs after `register` returned: a subscriber registered here misses
    /// nothing and sees nothing twice between history and live events.
    public func subscribe<T: Sendable>(session: String, register: @escaping @Sendable (Int64?) -> T) async throws -> T {
        try await run { tables in register(try tables.lastSeq(session: session)) }
    }

    public func sessions() async throws -> [SessionRecord] {
        try await run { try $0.sessions() }
    }

    public func session(_ id: String) async throws -> SessionRecord? {
        try await run { try $0.session(id) }
    }

    /// Events of `session` with seq in (`after`, `upTo`], of `types` when not empty, ascending, at most `limit`.
    public func events(session: String, after: Int64, upTo: Int64? = nil, types: [String] = [], limit: Int) async throws -> [StoredEvent] {
        try await run { try $0.events(session: session, after: after, upTo: upTo, types: types, limit: limit) }
    }

    /// The newest events of `types`, newest first.
    public func latestEvents(session: String, types: [String], limit: Int) async throws -> [StoredEvent] {
        try await run { try $0.latestEvents(session: session, types: types, limit: limit) }
    }
}
