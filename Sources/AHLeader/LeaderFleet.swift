import AHFleet
import Foundation

/// The fleet as the leader service uses it: what AHFleet parsed, flattened to the few
/// values the service needs (FleetBridge maps one to the other, so the engine does not
/// depend on the config's shape).
struct LeaderMember: Sendable, Equatable {
    enum Connect: String, Sendable { case auto, direct, accessPoint = "access-point" }

    var name: String
    var os: String?
    var tags: [String: String]
    var host: String?
    var sshUser: String
    var sshPort: Int
    var connect: Connect
    var workspace: String?
    /// This member's access point (`remote_server` of the member, else of the fleet).
    var remoteServer: String?
    var identityFile: String?
    var knownHosts: String?
    /// How the follower's shell finds `ah`.
    var remoteAH: String
}

struct LeaderFleet: Sendable {
    var name: String
    var followers: [LeaderMember]
    var tokenFile: String?
    var caFile: String?
    var sshConnectTimeout: Duration
    var sshKeepalive: Duration
    var healthProbeInterval: Duration
    var failureThreshold: Int
    var concurrency: Int
    var executionTimeout: Duration
    var sshRetry: Bool
    /// The parsed config (selection, adapters and sharding work on it).
    var config: FleetConfig
    /// `[fleet.execution] transfers`: slurp transfers at once.
    var transfers = 16

    func member(_ name: String) -> LeaderMember? { followers.first { $0.name == name } }
}
