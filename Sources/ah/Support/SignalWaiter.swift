import Dispatch
import Foundation

/// Waits for SIGTERM or SIGINT without sleeping: dispatch sources turn the signal into an event.
/// Cancelling the waiting task ends the wait (returning 0), so it can race other work.
enum SignalWaiter {
    static func waitForTermination() async -> Int32 {
        let wait = SignalWait()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                wait.start(continuation)
            }
        } onCancel: {
            wait.finish(0)
        }
    }
}

/// One wait: the signal sources and the continuation, resumed exactly once (by a signal or by
/// cancellation, whichever comes first).
private final class SignalWait: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Int32, Never>?
    private var sources: [DispatchSourceSignal] = []
    private var result: Int32?

    func start(_ continuation: CheckedContinuation<Int32, Never>) {
        let queue = DispatchQueue(label: "ah.signals")
        lock.lock()
        if let result {
            // Cancelled before we got here.
            lock.unlock()
            continuation.resume(returning: result)
            return
        }
        self.continuation = continuation
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { [weak self] in self?.finish(sig) }
            source.resume()
            sources.append(source)
        }
        lock.unlock()
    }

    func finish(_ signal: Int32) {
        lock.lock()
        guard result == nil else { lock.unlock(); return }
        result = signal
        let continuation = self.continuation
        self.continuation = nil
        let sources = self.sources
        self.sources = []
        lock.unlock()
        sources.forEach { $0.cancel() }
        continuation?.resume(returning: signal)
    }
}
