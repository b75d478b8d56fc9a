/// The operating system of a follower: it picks the command adapter (shell, quoting, paths).
public enum FleetOS: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case linux, macos, windows

    public var description: String { rawValue }
}

/// One `[[fleet.members]]` entry, with the fleet-wide defaults already applied: every value
/// here is the one to use for this member.
public struct FleetMember: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable, CaseIterable { case leader, follower }

    /// How the leader reaches the member's sshd.
    public enum Connect: String, Sendable, Hashable, CaseIterable {
        /// Direct TCP to `host` when it answers, else CONNECT through the access point.
        case auto
        /// Only direct TCP to `host`.
        case direct
        /// Only HTTP CONNECT through `remoteServer`.
        case accessPoint = "access-point"
    }

    /// The executor's `--name` at the access point (`ExecutorName` grammar); unique in the fleet.
    public var name: String
    /// `follower` unless the file says `leader`.
    public var role: Role
    /// Host name or address for direct dials; nil when the member is only reachable through
    /// its access point.
    public var host: String?
    /// `ssh_user`; default: the login name of the user running `ah`.
    public var sshUser: String
    /// `ssh_port`, 1-65535; default 22.
    public var sshPort: Int
    public var connect: Connect
    /// `os`, else `tags.os`; nil when neither says (the leader then asks the executor).
    public var os: FleetOS?
    /// The follower's copy of the leader workspace, as the follower spells it (POSIX path,
    /// `~/...`, or for Windows any form `WindowsPath.map` accepts); nil = the SSH login directory.
    public var workspace: String?
    /// The member's `remote_server`, else the fleet's.
    public var remoteServer: String?
    /// Free-form labels for `--tag` (as written; see `selectionTags`).
    public var tags: [String: String]
    /// The member's `identity_file`, else the fleet's (`~` expanded).
    public var identityFile: String?
    /// The member's `known_hosts`, else the fleet's (`~` expanded): when set, host keys are
    /// checked against this file instead of what the executor reported.
    public var knownHosts: String?
    /// How the follower's shell finds `ah`: the member's `remote_ah`, else the fleet's (default "ah").
    public var remoteAH: String

    public init(name: String, role: Role = .follower, host: String? = nil, sshUser: String, sshPort: Int = 22,
                connect: Connect = .auto, os: FleetOS? = nil, workspace: String? = nil, remoteServer: String? = nil,
                tags: [String: String] = [:], identityFile: String? = nil, knownHosts: String? = nil,
                remoteAH: String = FleetSettings.defaultRemoteAH) {
        self.name = name
        self.role = role
        self.host = host
        self.sshUser = sshUser
        self.sshPort = sshPort
        self.connect = connect
        self.os = os
        self.workspace = workspace
        self.remoteServer = remoteServer
        self.tags = tags
        self.identityFile = identityFile
        self.knownHosts = knownHosts
        self.remoteAH = remoteAH
    }

    /// The tags `--tag` matches against: the written tags, plus `os` from the `os` key when
    /// the tags do not say it, so `--tag os=linux` finds a member declared with `os = "linux"`.
    public var selectionTags: [String: String] {
        var tags = tags
        if tags["os"] == nil, let os { tags["os"] = os.rawValue }
        return tags
    }
}
