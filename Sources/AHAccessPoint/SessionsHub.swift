import AHStore
import Foundation
import NIOConcurrencyHelpers

/// The live side of session events: ingestion publishes each stored batch here (on the
/// store's worker, right after its commit, so in seq order), and every SSE consumer of the
/// session gets it in its own bounded queue. Publishing never waits for a consumer: one
/// that falls `SessionSubscriber.maxQueuedEvents` behind is cut off (it resumes with
/// Last-Event-ID), so many or slow consumers do not slow ingestion.
///
/// It also counts the leaders' uplink streams per session (a session is `active` while one
/// is attached).
public final class SessionsHub: Sendable {
    private struct State {
        var subscribers: [String: [ObjectIdentifier: SessionSubscriber]] = [:]
        var uplinks: [String: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Hands freshly stored events (one session, ascending seq) to that session's consumers.
    func publish(_ events: [StoredEvent]) {
        guard let session = events.first?.session else { return }
        let subscribers = state.withLockedValue { $0.subscribers[session].map { Array($0.values) } ?? [] }
        guard !subscribers.isEmpty else { return }
        let rendered = events.map(SSEEvent.init)
        for subscriber in subscribers { subscriber.push(rendered) }
    }

    /// Registers a consumer. Call only inside `StateStore.subscribe`, which fixes its place
    /// in the commit order.
    func add(_ subscriber: SessionSubscriber) {
        state.withLockedValue { $0.subscribers[subscriber.session, default: [:]][ObjectIdentifier(subscriber)] = subscriber }
    }

    func remove(_ subscriber: SessionSubscriber) {
        state.withLockedValue { state in
            state.subscribers[subscriber.session]?[ObjectIdentifier(subscriber)] = nil
            if state.subscribers[subscriber.session]?.isEmpty == true { state.subscribers[subscriber.session] = nil }
        }
    }

    func uplinkAttached(_ session: String) {
        state.withLockedValue { $0.uplinks[session, default: 0] += 1 }
    }

    func uplinkDetached(_ session: String) {
        state.withLockedValue { state in
            state.uplinks[session, default: 1] -= 1
            if state.uplinks[session]! <= 0 { state.uplinks[session] = nil }
        }
    }

    func hasUplink(_ session: String) -> Bool {
        state.withLockedValue { $0.uplinks[session] != nil }
    }

    var consumerCount: Int {
        state.withLockedValue { $0.subscribers.values.reduce(0) { $0 + $1.count } }
    }
}

/// One event rendered once as its SSE block (`id:`, `event:`, `data:`, blank line), shared
/// by every consumer.
struct SSEEvent: Sendable {
    let seq: Int64
    let type: String
    let bytes: [UInt8]

    init(_ event: StoredEvent) {
        seq = event.seq
        type = event.type
        bytes = Array("id: \(event.seq)\nevent: \(event.type)\ndata: \(event.json)\n\n".utf8)
    }
}

/// One SSE consumer's queue of live events.
final class SessionSubscriber: Sendable {
    /// Live events a consumer may have queued before it is cut off.
    static let maxQueuedEvents = 20_000

    enum Next: Sendable {
        case events([SSEEvent])
        /// Nothing arrived within the wait: time for a heartbeat comment.
        case idle
        /// It fell too far behind and was cut off.
        case overflow
    }

    private struct State {
        var queued: [SSEEvent] = []
        var overflowed = false
        var waiter: CheckedContinuation<Next, Never>?
        var waitToken = 0
    }

    let session: String
    private let limit: Int
    private let state = NIOLockedValueBox(State())

    init(session: String, limit: Int = SessionSubscriber.maxQueuedEvents) {
        self.session = session
        self.limit = limit
    }

    func push(_ events: [SSEEvent]) {
        let waiter = state.withLockedValue { state -> (CheckedContinuation<Next, Never>, Next)? in
            guard !state.overflowed else { return nil }
            if state.queued.count + events.count > limit {
                state.overflowed = true
                state.queued = []
            } else {
                state.queued += events
            }
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            return (waiter, take(&state))
        }
        if let (continuation, next) = waiter { continuation.resume(returning: next) }
    }

    private func take(_ state: inout State) -> Next {
        if state.overflowed { return .overflow }
        let events = state.queued
        state.queued = []
        return .events(events)
    }

    /// Everything queued, or waits up to `idle` for more (then `.idle`). Returns `.idle` at
    /// once when the task is cancelled.
    func next(idle: Duration) async -> Next {
        let ready = state.withLockedValue { state -> Next? in
            state.overflowed || !state.queued.isEmpty ? take(&state) : nil
        }
        if let ready { return ready }
        let token = state.withLockedValue { state -> Int in
            state.waitToken += 1
            return state.waitToken
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: idle)
            if !Task.isCancelled { self?.wake(token: token) }
        }
        defer { timer.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Next, Never>) in
                let immediate = state.withLockedValue { state -> Next? in
                    if state.overflowed || !state.queued.isEmpty { return take(&state) }
                    if Task.isCancelled || state.waitToken != token { return .idle }
                    state.waiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            wake(token: nil)
        }
    }

    /// Ends the current wait with `.idle` (its timer fired, or the task was cancelled: any wait).
    private func wake(token: Int?) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Next, Never>? in
            if let token, token != state.waitToken { return nil }
            // A wait that has not registered yet sees the new token and returns at once.
            state.waitToken += 1
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: .idle)
    }
}
