import AHStore
import Foundation
import Logging
import NIOConcurrencyHelpers

/// The write side of `EventJournal`: appends queue here and are written in order by the
/// journal's worker, a burst in one transaction; `seq` is assigned at that point (gap-free,
/// continuing what the file holds).
///
/// It also applies the uplink's bound: with an uplink configured, at most `limit` events of
/// the current session may wait unacknowledged by the access point. Beyond that new events
/// are not journaled (no seq is used, so the stored sequence stays gap-free), a warning says
/// so once, and when the access point has caught up an `eventsDropped` event (`count`)
/// records how many were left out.
final class JournalQueue: Sendable {
    struct Pending: Sendable {
        let type: String
        let ts: String
        let fields: [String: JSONValue]
    }

    private struct State {
        var pending: [Pending] = []
        var scheduled = false
        var nextSeq: Int64?
        var acked: Int64 = 0
        var limit: Int64?
        var dropped = 0
    }

    let session: String
    let logger: Logger
    /// Rings after every commit: the uplink waits on it.
    let appended = AppendSignal()
    private let state = NIOLockedValueBox(State())

    init(session: String, logger: Logger) {
        self.session = session
        self.logger = logger
    }

    /// Queues an event; true when the caller must schedule a write (none is pending).
    func add(type: String, ts: String, fields: [String: JSONValue]) -> Bool {
        state.withLockedValue { state in
            state.pending.append(Pending(type: type, ts: ts, fields: fields))
            defer { state.scheduled = true }
            return !state.scheduled
        }
    }

    /// Everything queued so far; later appends schedule a new write.
    func take() -> [Pending] {
        state.withLockedValue { state in
            defer {
                state.pending = []
                state.scheduled = false
            }
            return state.pending
        }
    }

    /// Writes `batch` inside the caller's transaction (on the journal's worker).
    func write(_ batch: [Pending], connection: SQLiteConnection) throws {
        var next: Int64
        if let cached = state.withLockedValue({ $0.nextSeq }) {
            next = cached
        } else {
            next = try connection.queryFirst("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE session = ?", [session]) {
                try $0.int64(0)
            } ?? 1
        }
        let insert = try connection.prepare("INSERT INTO events (session, seq, ts, type, data) VALUES (?, ?, ?, ?, ?)")
        func store(_ type: String, _ ts: String, _ fields: [String: JSONValue]) throws {
            var object = fields
            object["type"] = .string(type)
            object["seq"] = .number(Double(next))
            object["ts"] = .string(ts)
            object["session"] = .string(session)
            insert.reset()
            try insert.bind([session, next, ts, type, JSONValue.object(object).encoded])
            _ = try insert.step()
            next += 1
        }
        for event in batch {
            let (admit, resumed) = state.withLockedValue { state -> (Bool, Int) in
                if let limit = state.limit, next - 1 - state.acked >= limit {
                    if state.dropped == 0 {
                        logger.warning("""
                            the access point has not acknowledged \(limit) events of this session: new events are not \
                            journaled until it is reachable again (the uplink's bound)
                            """, metadata: ["session": "\(session)"])
                    }
                    state.dropped += 1
                    return (false, 0)
                }
                defer { state.dropped = 0 }
                return (true, state.dropped)
            }
            guard admit else { continue }
            if resumed > 0 {
                logger.warning("journaling events again; \(resumed) were left out", metadata: ["session": "\(session)"])
                try store("eventsDropped", event.ts, ["count": .int(resumed)])
            }
            try store(event.type, event.ts, event.fields)
        }
        let written = next
        state.withLockedValue { $0.nextSeq = written }
    }

    /// After the transaction of `write` committed.
    func committed() { appended.ring() }

    /// The highest seq written so far by this process (0 before the first write).
    var lastWritten: Int64 { state.withLockedValue { ($0.nextSeq ?? 1) - 1 } }

    /// If the transaction failed, the next write re-reads the stored seq.
    func forgetSeq() { state.withLockedValue { $0.nextSeq = nil } }

    /// The uplink's bound (nil: no uplink, nothing is held back).
    func setLimit(_ limit: Int64?) { state.withLockedValue { $0.limit = limit } }

    /// The access point holds every event of this session up to `seq`.
    func acknowledged(_ seq: Int64) { state.withLockedValue { $0.acked = max($0.acked, seq) } }
}

/// A counter that rings on every journal commit; the uplink waits for the next ring (or a
/// timeout) instead of polling the file.
final class AppendSignal: Sendable {
    private struct State {
        var rings: UInt64 = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Waits whose timer fired (or were cancelled) before they registered.
        var released: Set<Int> = []
        var nextID = 0
    }

    private let state = NIOLockedValueBox(State())

    var rings: UInt64 { state.withLockedValue { $0.rings } }

    func ring() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.rings &+= 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the count moved past `seen`, after `timeout`, or when cancelled.
    func wait(beyond seen: UInt64, timeout: Duration) async {
        let id = state.withLockedValue { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.release(id) }
        }
        defer {
            timer.cancel()
            state.withLockedValue { _ = $0.released.remove(id) }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    if state.rings != seen || Task.isCancelled || state.released.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            release(id)
        }
    }

    private func release(_ id: Int) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                state.released.insert(id)
                return nil
            }
            return waiter
        }
        waiter?.resume()
    }
}
