import Foundation

/// `access-point.json` in the state directory: where this executor connects and with which
/// identity files, written each time `ah agent enroll` starts. The leader service on the same
/// machine reads it (`[fleet] agent_state_dir`) to push its events to the same access point
/// under the same identity (docs/protocol.md, "Event streams").
public struct AccessPointRecord: Codable, Sendable, Equatable {
    public var host: String
    public var port: Int
    public var certFile: String
    public var keyFile: String
    public var caFile: String

    public static let fileName = "access-point.json"
}

extension ExecutorStateDirectory {
    /// Writes `access-point.json` (atomically; 0600 like the other identity files).
    public func recordAccessPoint(_ record: AccessPointRecord) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(record) else { return }
        let file = url.appendingPathComponent(AccessPointRecord.fileName)
        try? data.write(to: file, options: .atomic)
        chmod(file.path, 0o600)
    }
}

extension ExecutorAgent {
    /// Records where this agent connects, for the leader service's event uplink.
    func recordAccessPoint() {
        let files = identityFiles
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        state.recordAccessPoint(AccessPointRecord(host: configuration.host, port: configuration.port, certFile: absolute(files.cert),
                                                  keyFile: absolute(files.key), caFile: absolute(files.ca)))
    }
}
