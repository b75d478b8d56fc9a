import Foundation

/// A value delivered once to one waiter, whichever comes first (a reply or its timeout);
/// later deliveries are ignored.
final class OneShot<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var result: Result<Value, FollowerHelperError>?
    private var waiter: CheckedContinuation<Value, any Error>?

    func resolve(_ outcome: Result<Value, FollowerHelperError>) {
        let waiting: CheckedContinuation<Value, any Error>? = lock.withLock {
            guard result == nil else { return nil }
            result = outcome
            defer { waiter = nil }
            return waiter
        }
        waiting?.resume(with: outcome)
    }

    /// Waits for `resolve`; `timeout` resolves it with `onTimeout` if nothing came first.
    func wait(timeout: Duration, onTimeout: FollowerHelperError) async throws -> Value {
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.resolve(.failure(onTimeout)) }
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Value, FollowerHelperError>? = lock.withLock {
                if let result { return result }
                waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
