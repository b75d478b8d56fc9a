import AHTestSupport
import Foundation
import XCTest

/// A small real fleet: `ah serve`, followers that are each a real sshd behind their own
/// `ah agent enroll` (reached through the access point), optionally a follower reached
/// directly (verified with a known_hosts file), a fleet config, and the leader's state
/// directory (XDG_STATE_HOME) private to the test.
final class LeaderFixture {
    let tunnels: TunnelFixture
    let directory: TemporaryDirectory
    var members: [Member] = []
    var tokenFile = ""

    struct Member {
        var name: String
        var daemon: SSHDaemon
        var workspace: String
        var connect: String
        var tags: [String: String]
        var os: String?
        var knownHosts: String?
        /// The port written as `ssh_port` when the direct path is not the daemon itself
        /// (a relay a test can cut).
        var sshPort: Int? = nil
    }

    init() throws {
        tunnels = try TunnelFixture()
        directory = tunnels.directory
    }

    var configPath: String { directory.file("fleet.toml").path }
    var stateHome: String { directory.file("state").path }

    func start(accessPointFollowers: [(String, [String: String])], directFollowers: [(String, [String: String])] = []) async throws {
        try await tunnels.start()
        tokenFile = try await tunnels.userToken("leader").file
        for (name, tags) in accessPointFollowers {
            let daemon = try await tunnels.addExecutor(name)
            members.append(Member(name: name, daemon: daemon, workspace: try workspace(name), connect: "access-point", tags: tags))
        }
        for (name, tags) in directFollowers {
            let daemon = try await SSHDaemon.start(in: directory.file("sshd-\(name)"))
            tunnels.daemons[name] = daemon
            let knownHosts = directory.file("known_hosts-\(name)").path
            let key = daemon.hostKeyPublic.split(separator: " ")
            try "[127.0.0.1]:\(daemon.port) \(key[0]) \(key[1])\n".write(toFile: knownHosts, atomically: true, encoding: .utf8)
            members.append(Member(name: name, daemon: daemon, workspace: try workspace(name), connect: "direct", tags: tags,
                                  knownHosts: knownHosts))
        }
        try writeConfig()
    }

    private func workspace(_ name: String) throws -> String {
        let path = directory.file("ws-\(name)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func writeConfig(execution: String = "", extraFleet: String = "", connectivity: String = "") throws {
        var text = """
            [fleet]
            name = "test-fleet"
            remote_server = "\(tunnels.httpURL)"
            token_file = "\(tokenFile)"
            remote_ah = "\(try BuiltProducts.ah().path)"
            \(extraFleet)

            [fleet.connectivity]
            ssh_connect_timeout = "20s"
            \(connectivity)

            [fleet.execution]
            timeout = "2m"
            \(execution)

            """
        for member in members {
            let tags = member.tags.sorted { $0.key < $1.key }.map { "\($0.key) = \"\($0.value)\"" }.joined(separator: ", ")
            text += """

                [[fleet.members]]
                name = "\(member.name)"
                role = "follower"
                host = "127.0.0.1"
                ssh_user = "root"
                ssh_port = \(member.sshPort ?? member.daemon.port)
                connect = "\(member.connect)"
                workspace = "\(member.workspace)"
                identity_file = "\(member.daemon.clientKey)"
                tags = { \(tags) }

                """
            if let os = member.os { text += "os = \"\(os)\"\n" }
            if let knownHosts = member.knownHosts { text += "known_hosts = \"\(knownHosts)\"\n" }
        }
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// `ah agent followers ARGS --fleet-config ...` with the fixture's state directory.
    func followers(_ arguments: [String], timeout: Double = 120) async throws -> ProcessResult {
        var words = arguments
        let insertAt = words.firstIndex(of: "--") ?? words.count
        words.insert(contentsOf: ["--fleet-config", configPath], at: insertAt)
        return try await ProcessRunner.run(try BuiltProducts.ah(), ["agent", "followers"] + words,
                                           environment: ["XDG_STATE_HOME": stateHome, "AH_TOKEN_FILE": ""], timeout: timeout)
    }

    func runJSON(_ arguments: [String], timeout: Double = 120) async throws -> (result: ProcessResult, json: [String: Any]) {
        let result = try await followers(["run", "--json"] + arguments, timeout: timeout)
        let json = (try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
        return (result, json)
    }

    static func hosts(_ json: [String: Any]) -> [String: [String: Any]] {
        var byName: [String: [String: Any]] = [:]
        for host in json["hosts"] as? [[String: Any]] ?? [] { byName[host["name"] as? String ?? ""] = host }
        return byName
    }

    func stop() async {
        _ = try? await followers(["stop"], timeout: 20)
        await tunnels.stop()
    }

    /// How many public key logins the follower's sshd has accepted so far.
    func acceptedLogins(_ name: String) -> Int {
        tunnels.daemons[name]!.process.stderr.components(separatedBy: "Accepted publickey").count - 1
    }
}
