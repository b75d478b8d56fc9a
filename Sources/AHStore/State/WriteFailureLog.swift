import Logging
import NIOConcurrencyHelpers

/// Logs failures of queued writes without flooding: the first failure of a run is logged
/// with its error, later ones only counted, and the next success logs how many failed in
/// between. A full disk or a stuck lock then costs two log lines, not one per heartbeat.
final class WriteFailureLog: Sendable {
    private let logger: Logger
    private let label: String
    /// Failures since the last success; guarded by the box.
    private let failing = NIOLockedValueBox(0)

    init(logger: Logger, label: String) {
        self.logger = logger
        self.label = label
    }

    func failed(_ what: String, error: any Error) {
        let count = failing.withLockedValue { count -> Int in
            count += 1
            return count
        }
        guard count == 1 else { return }
        logger.error("cannot write to the state store; further failures are counted until a write succeeds",
                     metadata: ["store": "\(label)", "write": "\(what)", "error": "\(error)"])
    }

    func dropped(_ what: String, reason: String) {
        failed(what, error: DroppedWrite(reason: reason))
    }

    func succeeded() {
        let count = failing.withLockedValue { count -> Int in
            defer { count = 0 }
            return count
        }
        guard count > 0 else { return }
        logger.warning("state store writes succeed again", metadata: ["store": "\(label)", "failedWrites": "\(count)"])
    }

    /// Failures since the last success (for tests and metrics).
    var currentFailures: Int { failing.withLockedValue { $0 } }
}

struct DroppedWrite: Error, CustomStringConvertible {
    let reason: String
    var description: String { "write dropped: \(reason)" }
}
