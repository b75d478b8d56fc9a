import Dispatch
import Foundation

/// Waits for SIGTERM or SIGINT without sleeping: dispatch sources turn the signal into an event.
enum SignalWaiter {
    static func waitForTermination() async -> Int32 {
        await withCheckedContinuation { continuation in
            let queue = DispatchQueue(label: "ah.signals")
            var sources: [DispatchSourceSignal] = []
            let once = OnceFlag()
            for sig in [SIGTERM, SIGINT] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                source.setEventHandler {
                    if once.take() {
                        sources.forEach { $0.cancel() }
                        continuation.resume(returning: sig)
                    }
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}

private final class OnceFlag: @unchecked Sendable {
    private var taken = false
    private let lock = NSLock()
    func take() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if taken { return false }
        taken = true
        return true
    }
}
