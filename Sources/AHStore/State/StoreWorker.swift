import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// The one thread on which a `StateStore` (or the leader's event journal) touches SQLite.
///
/// SQLite calls block: on disk I/O, and for up to the busy timeout (seconds) while another
/// process holds the write lock. Run on the Swift cooperative pool, a few such calls would
/// park every thread of it, and with it every task of `ah serve`. Here they run on a
/// dedicated `NIOThreadPool` of one thread (as sqlite-nio does), and callers await a
/// continuation instead.
///
/// One thread also makes it the serial writer: jobs run strictly in submission order (the
/// pool's queue is FIFO), so queued writes land in the order they were made, and `flush`
/// (an empty job) returns once everything queued before it has run.
public final class StoreWorker: Sendable {
    private let pool: NIOThreadPool
    private let failures: WriteFailureLog
    /// Set by `close`; later jobs are refused instead of racing the shutdown.
    private let closed = NIOLockedValueBox(false)

    public init(label: String, logger: Logger) {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        failures = WriteFailureLog(logger: logger, label: label)
    }

    /// Runs `body` on the worker and returns its result; the caller's task is suspended, not
    /// its thread. A job is dropped (with `CancellationError`) if the task is cancelled
    /// before the job starts; once started it runs to the end.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard !closed.withLockedValue({ $0 }) else { throw StateStoreClosed() }
        do {
            return try await pool.runIfActive(body)
        } catch is CancellationError where closed.withLockedValue({ $0 }) {
            // The pool cancels jobs still queued when it shuts down.
            throw StateStoreClosed()
        }
    }

    /// Queues `body` behind every earlier job and returns at once. A failure is logged (see
    /// `WriteFailureLog`) under `what`, which names the write without its values.
    public func enqueue(_ what: String, _ body: @escaping @Sendable () throws -> Void) {
        guard !closed.withLockedValue({ $0 }) else {
            failures.dropped(what, reason: "the state store is closed")
            return
        }
        let failures = self.failures
        pool.submit { state in
            guard case .active = state else {
                failures.dropped(what, reason: "the state store was shut down before it ran")
                return
            }
            do {
                try body()
                failures.succeeded()
            } catch {
                failures.failed(what, error: error)
            }
        }
    }

    /// Queued writes that failed since the last one that succeeded.
    var failedWrites: Int { failures.currentFailures }

    /// Waits until every job queued before this call has run.
    public func flush() async {
        // An empty job: the queue is FIFO on one thread, so it runs after all earlier ones.
        // Not cancellable on purpose: a shutdown path must not skip it.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pool.submit { _ in continuation.resume() }
        }
    }

    /// Refuses new jobs, runs every queued one, then `last` (e.g. closing the database, which
    /// checkpoints the WAL: disk I/O that belongs on this thread too), then stops the thread.
    /// A second call only waits for the queue.
    public func close(finally last: @escaping @Sendable () -> Void) async {
        let already = closed.withLockedValue { closed -> Bool in
            defer { closed = true }
            return closed
        }
        guard !already else {
            await flush()
            return
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            pool.submit { _ in
                last()
                continuation.resume()
            }
        }
        try? await pool.shutdownGracefully()
    }
}

/// Thrown by a `StateStore` call made after `close()`.
public struct StateStoreClosed: Error, CustomStringConvertible, Sendable {
    public var description: String { "the state store is closed (the access point is shutting down)" }
}
