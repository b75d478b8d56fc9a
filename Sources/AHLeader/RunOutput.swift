import Foundation

/// How `followers run` shows output as text: pure functions, so the CLI stays thin and
/// tests check the exact bytes.
public enum RunOutput {
    /// Splits streamed chunks into whole lines per host and stream, prefixing each with its
    /// host (`linux-1: ...`, stderr as `linux-1 [stderr]: ...`), like clush and pdsh do.
    /// A chunk may end mid-line: the rest waits for the next chunk or `finish`.
    public struct LinePrefixer: Sendable {
        private var partial: [String: String] = [:]

        public init() {}

        public mutating func feed(host: String, stream: OutputStreamKind, text: String) -> [String] {
            let key = "\(host)\u{0}\(stream.rawValue)"
            let combined = (partial[key] ?? "") + text
            var lines = combined.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            partial[key] = lines.removeLast()
            return lines.map { RunOutput.prefix(host: host, stream: stream) + $0 }
        }

        /// Lines still waiting for their newline (a host whose output did not end with one).
        public mutating func finish() -> [String] {
            defer { partial = [:] }
            return partial.keys.sorted().compactMap { key in
                guard let text = partial[key], !text.isEmpty else { return nil }
                let parts = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
                return RunOutput.prefix(host: parts[0], stream: OutputStreamKind(rawValue: parts[1]) ?? .stdout) + text
            }
        }
    }

    static func prefix(host: String, stream: OutputStreamKind) -> String {
        stream == .stdout ? "\(host): " : "\(host) [stderr]: "
    }

    /// `--gather` (clush -b): identical outputs printed once under the list of hosts that
    /// produced them, groups in order of first host name.
    public static func gathered(_ report: RunReport) -> String {
        var groups: [(output: String, hosts: [String])] = []
        for host in report.hosts.sorted(by: { $0.name < $1.name }) {
            var output = host.stdout
            if !host.stderr.isEmpty {
                output += (output.isEmpty || output.hasSuffix("\n") ? "" : "\n") + "[stderr]\n" + host.stderr
            }
            if let error = host.error { output += (output.isEmpty || output.hasSuffix("\n") ? "" : "\n") + "[\(host.status.rawValue)] \(error)\n" }
            if let index = groups.firstIndex(where: { $0.output == output }) {
                groups[index].hosts.append(host.name)
            } else {
                groups.append((output, [host.name]))
            }
        }
        var text = ""
        for group in groups {
            let title = group.hosts.joined(separator: ",")
            let rule = String(repeating: "-", count: min(max(title.count, 15), 79))
            text += "\(rule)\n\(title) (\(group.hosts.count))\n\(rule)\n"
            text += group.output
            if !group.output.isEmpty, !group.output.hasSuffix("\n") { text += "\n" }
        }
        return text
    }

    /// Per-host status lines after the output, then cli.md's last line
    /// `N passed, M failed, K unreachable`.
    public static func summary(_ report: RunReport) -> String {
        var text = ""
        for host in report.hosts {
            var line = "\(host.name): \(host.status.rawValue)"
            if let exit = host.exit { line += " (exit \(exit))" }
            if let signal = host.signal { line += " (\(signal))" }
            line += " in \(formatDuration(host.durationMs))"
            if let error = host.error { line += ": \(error)" }
            if let log = host.logFile { line += " — log \(log)" }
            text += line + "\n"
        }
        for command in report.commands ?? [] {
            text += "[\(command.shardIndex + 1)/\(command.shardCount)] \(command.command) on \(command.host) (\(command.os)): \(command.status.rawValue)"
            if let exit = command.exit { text += " (exit \(exit))" }
            text += "\n"
        }
        return text + report.summaryLine + "\n"
    }

    static func formatDuration(_ milliseconds: Int) -> String {
        milliseconds < 1000 ? "\(milliseconds) ms" : String(format: "%.1f s", Double(milliseconds) / 1000)
    }
}
