import Foundation
import Logging

/// Logs go to stderr (stdout carries data and `--json`). The level is `--log-level` (which
/// AH_LOG_LEVEL and the config file fill like any option) when the command has
/// GlobalOptions; for one that has not, AH_LOG_LEVEL directly; default info.
enum CLILogging {
    private static let configuredLevel = LockedLevel()

    /// Sets the level for every logger made afterwards. EntryPoint calls it after parsing
    /// and before `run()`; swift-log bootstraps once, so later calls have no effect.
    static func configure(level: Logger.Level, format: LogFormat) {
        configuredLevel.set(level, format: format)
    }

    static let bootstrapOnce: Void = {
        let environment = ProcessInfo.processInfo.environment
        let configured = configuredLevel.get()
        let level = configured?.level ?? environment["AH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let format = configured?.format ?? environment["AH_LOG_FORMAT"].flatMap(LogFormat.init(rawValue:)) ?? .text
        LoggingSystem.bootstrap { label in
            CLILogHandler(label: label, format: format, level: level)
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
    private var value: (level: Logger.Level, format: LogFormat)?

    func set(_ level: Logger.Level, format: LogFormat) { lock.withLock { value = (level, format) } }
    func get() -> (level: Logger.Level, format: LogFormat)? { lock.withLock { value } }
}
