import Foundation
import Logging

/// Logs go to stderr (stdout carries data and `--json`). Level from AH_LOG_LEVEL, default info.
enum CLILogging {
    static let bootstrapOnce: Void = {
        let level = ProcessInfo.processInfo.environment["AH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
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
