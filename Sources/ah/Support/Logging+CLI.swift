import Foundation
import Logging

/// Logs go to stderr (stdout carries data and `--json`). The level is `--log-level` (which
/// AH_LOG_LEVEL and the config file fill like any option) when the command has
/// GlobalOptions; for one that has not, AH_LOG_LEVEL directly; default info.
enum CLILogging {
    private static let configuredLevel = LockedLevel()

    /// Sets the level for every logger made afterwards. EntryPoint calls it after parsing
    /// and before `run()`; swift-log bootstraps once, so later calls have no effect.
    static func configure(level: Logger.Level) {
        configuredLevel.set(level)
    }

    static let bootstrapOnce: Void = {
        let level = configuredLevel.get()
            ?? ProcessInfo.processInfo.environment["AH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }()

    static func logger(_ label: String) -> Logger {
        _ = bootstrapOnce
        return Logger(label: label)
    }
}

/// The configured level behind a lock: set on the main task, read wherever the first
/// logger is made.
private final class LockedLevel: @unchecked Sendable {
    private let lock = NSLock()
    private var level: Logger.Level?

    func set(_ newValue: Logger.Level) { lock.withLock { level = newValue } }
    func get() -> Logger.Level? { lock.withLock { level } }
}
