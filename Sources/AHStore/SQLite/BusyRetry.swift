import Foundation

/// Retries an operation while it fails with `SQLITE_BUSY`, with jittered exponential backoff,
/// until a deadline.
///
/// Used for `BEGIN IMMEDIATE` and `COMMIT`: with WAL there is one writer at a time across all
/// processes sharing the file, and a second `ah` process (or an operator's `ah token create`
/// while `ah serve` runs) must wait its turn instead of failing the request. The jitter keeps
/// two processes from retrying in lockstep.
struct BusyRetry {
    let limit: Duration

    @discardableResult
    func run<T>(_ operation: () throws -> T) throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: limit)
        var delay = Duration.milliseconds(2)
        var attempts = 0
        while true {
            attempts += 1
            do {
                return try operation()
            } catch let error as SQLiteError where error.isBusy {
                let remaining = clock.now.duration(to: deadline)
                guard remaining > .zero else {
                    throw SQLiteError(code: error.extendedCode,
                                      message: error.message + " (still busy after \(attempts) attempts over \(limit))",
                                      sql: error.sql)
                }
                let jitter = Double.random(in: 0.5...1.5)
                Thread.sleep(forTimeInterval: min(delay.timeInterval * jitter, remaining.timeInterval))
                delay = min(delay * 2, .milliseconds(100))
            }
        }
    }
}
