import Foundation
import Logging
import NIOConcurrencyHelpers

/// Logs when a connected executor turns degraded (heartbeats late, or it said Goodbye) and
/// when it recovers. The registry computes states lazily, at the moment someone asks; an
/// operator reading logs at 3 a.m. needs the transition written down when it happens.
///
/// `check(at:)` is the whole logic and takes the time as an argument, so tests drive it with
/// their own clock; `run` calls it once a second.
final class DegradationWatch: Sendable {
    let registry: ExecutorRegistry
    let logger: Logger
    /// Executors last seen degraded, by the identity of their connection (a reconnect starts fresh).
    private let degraded = NIOLockedValueBox<[String: ObjectIdentifier]>([:])

    init(registry: ExecutorRegistry, logger: Logger) {
        self.registry = registry
        self.logger = logger
    }

    /// Compares every live executor's state with the last check and logs the changes.
    /// Returns the names that turned degraded in this check (for tests).
    @discardableResult
    func check(at now: Date) -> [String] {
        let snapshot = registry.snapshot()
        var turned: [String] = []
        var recovered: [String] = []
        degraded.withLockedValue { seen in
            for (name, entry) in snapshot {
                let id = ObjectIdentifier(entry.connection)
                let isDegraded = entry.state(at: now) == .degraded
                if isDegraded, seen[name] != id {
                    seen[name] = id
                    // No Hello yet is the normal first moments of a connection, not news.
                    if entry.hello != nil { turned.append(name) }
                } else if !isDegraded, seen[name] != nil {
                    seen[name] = nil
                    recovered.append(name)
                }
            }
            for name in seen.keys where snapshot[name] == nil { seen[name] = nil }
        }
        for name in turned.sorted() {
            guard let entry = snapshot[name] else { continue }
            let last = entry.lastHeartbeatAt ?? entry.lastSeen
            var metadata: Logger.Metadata = ["name": "\(name)", "silentSeconds": "\(Int(now.timeIntervalSince(last)))"]
            if let leaving = entry.leaving { metadata["leaving"] = "\(leaving)" }
            logger.warning("executor degraded: \(entry.leaving == nil ? "heartbeats are late" : "it is shutting down")", metadata: metadata)
        }
        for name in recovered.sorted() {
            logger.info("executor connected again: heartbeats arrive on time", metadata: ["name": "\(name)"])
        }
        return turned
    }

    func run() async {
        while !Task.isCancelled {
            check(at: Date())
            try? await Task.sleep(nanoseconds: 1_000_000_000)
        }
    }
}
