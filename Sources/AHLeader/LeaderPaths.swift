import Crypto
import Foundation

/// Where a leader service keeps its socket, lock, log, state database and per-run logs:
/// under the user's state directory (`$XDG_STATE_HOME/ah/leader`, else
/// `~/.local/state/ah/leader`), never inside the synced workspace.
///
/// One service per user, fleet config and `ah` version: the socket's name is a hash of the
/// config file's real path and the version, so a command never talks to a service started
/// for another fleet or by another build of `ah` (which would speak another protocol).
public struct LeaderPaths: Sendable, Equatable {
    public let stateDirectory: URL
    public let key: String

    public init(stateDirectory: URL, fleetConfig: String, version: String) {
        self.stateDirectory = stateDirectory
        let real = URL(fileURLWithPath: fleetConfig).resolvingSymlinksInPath().standardizedFileURL.path
        let digest = SHA256.hash(data: Data("\(real)\n\(version)".utf8))
        key = digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// The default state directory for this user.
    public static func defaultStateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            return URL(fileURLWithPath: state).appendingPathComponent("ah/leader")
        }
        let home = environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".local/state/ah/leader")
    }

    /// The service's socket. Unix socket paths are limited to 107 bytes: a state directory
    /// deeper than that gets its socket in /tmp/ah-leader-UID (0700) instead.
    public var socket: URL {
        let preferred = stateDirectory.appendingPathComponent("leader-\(key).sock")
        if preferred.path.utf8.count <= 100 { return preferred }
        return URL(fileURLWithPath: "/tmp/ah-leader-\(getuid())").appendingPathComponent("leader-\(key).sock")
    }

    /// Held (flock) by the running service: a second one started at the same moment exits.
    public var lock: URL { stateDirectory.appendingPathComponent("leader-\(key).lock") }
    /// An auto-started service's stderr.
    public var log: URL { stateDirectory.appendingPathComponent("leader-\(key).log") }
    /// The service's SQLite state (paths, event journal).
    public var database: URL { stateDirectory.appendingPathComponent("leader-\(key).sqlite") }
    /// Per-run, per-host output logs.
    public var runLogs: URL { stateDirectory.appendingPathComponent("runs") }

    /// Creates the state directory (0700) and, when used, the socket's /tmp directory.
    public func prepare() throws {
        for directory in [stateDirectory, socket.deletingLastPathComponent(), runLogs] {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            // An existing directory keeps its mode: tighten it, since sockets and logs live here.
            chmod(directory.path, 0o700)
        }
    }
}
