import AHLeader
import Foundation
import Logging

/// How log lines look on stderr.
enum LogFormat: String, CaseIterable, Sendable {
    /// `2026-12-03T10:06:45.123Z info ah.serve: executor connected name=node1 remote=127.0.0.1:4433`
    /// (logfmt-style metadata; values with spaces, quotes or `=` are quoted), for people.
    case text
    /// One JSON object per line (`ts`, `level`, `logger`, `msg`, then the metadata keys), for
    /// log shippers.
    case json
}

/// A swift-log handler writing one line per record to stderr in `LogFormat`. Lines are
/// written with a single `write(2)` each, so concurrent loggers never interleave within a line.
struct CLILogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let explicit = event.metadata { merged.merge(explicit) { _, new in new } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        let text = Self.render(format: format, date: Date(), level: event.level, label: label, message: "\(event.message)",
                               metadata: merged)
        var bytes = Array(text.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { if written < 0, errno == EINTR { continue }; return }
                offset += written
            }
        }
    }

    /// One line without the newline; pure, so tests can check it.
    static func render(format: LogFormat, date: Date, level: Logger.Level, label: String, message: String,
                       metadata: Logger.Metadata) -> String {
        let timestamp = timestampStyle.format(date)
        let keys = metadata.keys.sorted()
        switch format {
        case .text:
            var out = "\(timestamp) \(level) \(label): \(message)"
            for key in keys {
                out += " \(key)=\(logfmtValue(String(describing: metadata[key]!)))"
            }
            return out
        case .json:
            var out = "{\"ts\":\(jsonString(timestamp)),\"level\":\(jsonString(level.rawValue)),"
                + "\"logger\":\(jsonString(label)),\"msg\":\(jsonString(message))"
            for key in keys where !["ts", "level", "logger", "msg"].contains(key) {
                out += ",\(jsonString(key)):\(jsonString(String(describing: metadata[key]!)))"
            }
            return out + "}"
        }
    }

    /// A value as logfmt has it: bare when it is one plain word, else quoted with `"` and
    /// `\` escaped and control characters written as escapes (a value can never start a new line).
    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains {
            $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.properties.generalCategory == .control
        }
        guard needsQuotes else { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.properties.generalCategory == .control {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// One JSON string literal: the same escaping as the leader's event journal.
    static func jsonString(_ value: String) -> String { JSONValue.quote(value) }

    /// UTC with milliseconds: sortable, and unambiguous across machines.
    private static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}
