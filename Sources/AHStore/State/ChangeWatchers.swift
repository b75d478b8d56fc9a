import NIOConcurrencyHelpers

/// The open `executorChanges()` streams of a store, so that its own writes can notify them
/// and `close()` can end them.
final class ChangeWatchers: Sendable {
    private struct State {
        var next = 0
        var continuations: [Int: AsyncStream<ExecutorsChange>.Continuation] = [:]
        var closed = false
    }

    private let state = NIOLockedValueBox(State())

    func makeID() -> Int {
        state.withLockedValue { state -> Int in
            state.next += 1
            return state.next
        }
    }

    /// Registers a stream and yields `first` to it, under the lock that `yield` takes too, so
    /// no change can come before `first` or fall between it and the registration. A stream
    /// registered after `finishAll` is finished at once.
    func add(_ id: Int, _ continuation: AsyncStream<ExecutorsChange>.Continuation, first: ExecutorsChange) {
        let accepted = state.withLockedValue { state -> Bool in
            guard !state.closed else { return false }
            state.continuations[id] = continuation
            continuation.yield(first)
            return true
        }
        if !accepted { continuation.finish() }
    }

    func remove(_ id: Int) {
        _ = state.withLockedValue { $0.continuations.removeValue(forKey: id) }
    }

    /// Yields under the lock (an AsyncStream yield only buffers), keeping the order of `add`.
    func yield(_ change: ExecutorsChange) {
        state.withLockedValue { state in
            for continuation in state.continuations.values { continuation.yield(change) }
        }
    }

    func finishAll() {
        let all = state.withLockedValue { state -> [AsyncStream<ExecutorsChange>.Continuation] in
            state.closed = true
            defer { state.continuations = [:] }
            return Array(state.continuations.values)
        }
        for continuation in all { continuation.finish() }
    }
}
