import AHSPIFFE
import Foundation

/// Turns the TOML tree into a `FleetConfig`, key by key, refusing unknown keys at every level.
struct FleetConfigReader {
    let file: String
    let context: FleetLoadContext

    func read(_ root: [String: TOMLNode]) throws(FleetConfigError) -> FleetConfig {
        var reader = TableReader(file: file, path: "", table: root)
        let fleetTable = try reader.table("fleet")
        let filesetsTable = try reader.table("filesets")
        // A misspelt top-level table is the likeliest mistake: report it before the rest.
        try reader.finish()
        var config = FleetConfig(file: file)
        if var fleet = fleetTable {
            config.settings = try settings(&fleet)
            config.members = try members(&fleet, settings: config.settings)
            try fleet.finish()
        }
        if let filesetsTable { config.filesets = try filesets(filesetsTable) }
        return config
    }

    // MARK: [fleet]

    private func settings(_ fleet: inout TableReader) throws(FleetConfigError) -> FleetSettings {
        var settings = FleetSettings()
        if let name = try fleet.string("name") {
            if name.contains("/") { throw fleet.failure("name", .string(name), "must not contain '/'") }
            settings.name = name
        }
        settings.remoteServer = try remoteServer(&fleet)
        settings.tokenFile = try localPath(&fleet, "token_file")
        settings.caFile = try localPath(&fleet, "ca_file")
        settings.identityFile = try localPath(&fleet, "identity_file")
        settings.knownHosts = try localPath(&fleet, "known_hosts")
        settings.agentStateDir = try localPath(&fleet, "agent_state_dir")
        if let remoteAH = try fleet.string("remote_ah") { settings.remoteAH = remoteAH }

        if var sync = try fleet.table("sync") {
            if let ignores = try sync.stringArray("ignores") { settings.sync.ignores = ignores }
            if let timeout = try sync.duration("timeout") { settings.sync.timeout = timeout }
            if let retention = try sync.integer("retention", in: 1...10_000) { settings.sync.retention = retention }
            try sync.finish()
        }
        if var connectivity = try fleet.table("connectivity") {
            if let value = try connectivity.duration("ssh_connect_timeout") { settings.connectivity.sshConnectTimeout = value }
            if let value = try connectivity.duration("ssh_keepalive") { settings.connectivity.sshKeepalive = value }
            if let value = try connectivity.duration("health_probe_interval") { settings.connectivity.healthProbeInterval = value }
            if let value = try connectivity.integer("failure_threshold", in: 1...1000) { settings.connectivity.failureThreshold = value }
            try connectivity.finish()
        }
        if var execution = try fleet.table("execution") {
            if let value = try execution.integer("concurrency", in: 1...1000) { settings.execution.concurrency = value }
            if let value = try execution.duration("timeout") { settings.execution.timeout = value }
            if let value = try execution.boolean("ssh_retry") { settings.execution.sshRetry = value }
            if let value = try execution.integer("transfers", in: 1...1000) { settings.execution.transfers = value }
            try execution.finish()
        }
        return settings
    }

    // MARK: [[fleet.members]]

    private func members(_ fleet: inout TableReader, settings: FleetSettings) throws(FleetConfigError) -> [FleetMember] {
        guard let readers = try fleet.tableArray("members") else { return [] }
        var members: [FleetMember] = []
        var firstIndex: [String: Int] = [:]
        var leaderIndex: Int?
        for (index, var reader) in readers.enumerated() {
            let member = try member(&reader, settings: settings)
            if let previous = firstIndex[member.name] {
                throw reader.failure("name", .string(member.name), "fleet.members[\(previous)] has the same name (names must be unique)")
            }
            firstIndex[member.name] = index
            if member.role == .leader {
                if let leaderIndex {
                    throw reader.failure("role", .string("leader"),
                                         "fleet.members[\(leaderIndex)] is already the leader (at most one member may be)")
                }
                leaderIndex = index
            }
            members.append(member)
        }
        return members
    }

    private func member(_ reader: inout TableReader, settings: FleetSettings) throws(FleetConfigError) -> FleetMember {
        guard let name = try reader.string("name") else {
            throw FleetConfigError(file: file, key: reader.keyPath("name"), reason: "is required (the executor's --name)")
        }
        if let problem = ExecutorName.problem(name) { throw reader.failure("name", .string(name), problem) }
        var member = FleetMember(name: name, sshUser: context.userName, remoteAH: settings.remoteAH)
        if let role = try reader.string("role") {
            guard let value = FleetMember.Role(rawValue: role) else {
                throw reader.failure("role", .string(role), "must be \"leader\" or \"follower\"")
            }
            member.role = value
        }
        if let host = try reader.string("host") {
            if let bad = host.unicodeScalars.first(where: { $0 == " " || $0 == "/" || $0 == "@" }) {
                throw reader.failure("host", .string(host), "a host name or address cannot contain '\(bad)'")
            }
            member.host = host
        }
        if let user = try reader.string("ssh_user") {
            if user.hasPrefix("-") || user.unicodeScalars.contains(where: { $0 == " " || $0 == "@" || $0 == ":" }) {
                throw reader.failure("ssh_user", .string(user), "not a user name (no spaces, '@', ':' or leading '-')")
            }
            member.sshUser = user
        }
        if let port = try reader.integer("ssh_port", in: 1...65535) { member.sshPort = port }
        if let connect = try reader.string("connect") {
            guard let value = FleetMember.Connect(rawValue: connect) else {
                throw reader.failure("connect", .string(connect), "must be \"auto\", \"direct\" or \"access-point\"")
            }
            member.connect = value
        }
        let osNode = reader.entries["os"]
        if let os = try reader.string("os") {
            guard let value = FleetOS(rawValue: os) else {
                throw reader.failure("os", .string(os), "must be \"linux\", \"macos\" or \"windows\"")
            }
            member.os = value
        }
        if var tags = try reader.table("tags") {
            for key in tags.entries.keys.sorted() {
                guard let value = try tags.string(key) else { continue }
                if key.isEmpty || key.unicodeScalars.contains(where: { $0 == "=" || $0 == " " || ASCII.isControl($0) }) {
                    throw tags.failure(key, .string(value), "a tag name must be non-empty without '=', spaces or control characters")
                }
                member.tags[key] = value
            }
        }
        if let tagOS = member.tags["os"] {
            if let os = member.os {
                if tagOS != os.rawValue {
                    throw reader.failure("os", osNode, "disagrees with tags.os = \(TOMLNode.quoted(tagOS)) (write the same OS in both, or only one)")
                }
            } else {
                guard let value = FleetOS(rawValue: tagOS) else {
                    throw FleetConfigError(file: file, key: reader.keyPath("tags") + ".os", value: TOMLNode.quoted(tagOS),
                                           reason: "must be \"linux\", \"macos\" or \"windows\" (it gives the member's OS when os is not set)")
                }
                member.os = value
            }
        }
        if let workspace = try reader.string("workspace") {
            if member.os == .windows, case .failure(let error) = WindowsPath.map(workspace) {
                throw reader.failure("workspace", .string(workspace), "cannot be a Windows path: \(error.reason)")
            }
            member.workspace = workspace
        }
        member.remoteServer = try remoteServer(&reader) ?? settings.remoteServer
        member.identityFile = try localPath(&reader, "identity_file") ?? settings.identityFile
        member.knownHosts = try localPath(&reader, "known_hosts") ?? settings.knownHosts
        if let remoteAH = try reader.string("remote_ah") { member.remoteAH = remoteAH }
        try reader.finish()

        // Contradictions only matter for followers: the leader is the machine running `ah`.
        if member.role == .follower {
            if member.connect == .direct, member.host == nil {
                throw reader.failure("connect", .string("direct"), "a direct connection needs host")
            }
            if member.connect == .accessPoint, member.remoteServer == nil {
                throw reader.failure("connect", .string("access-point"), "needs remote_server (on the member or in [fleet])")
            }
        }
        return member
    }

    // MARK: [filesets.NAME]

    private func filesets(_ table: TableReader) throws(FleetConfigError) -> [Fileset] {
        var table = table
        var result: [Fileset] = []
        for name in table.entries.keys.sorted() {
            let node = table.entries[name]
            if let problem = Fileset.nameProblem(name) { throw table.failure(name, node, problem) }
            guard var reader = try table.table(name) else { continue }
            guard let include = try reader.stringArray("include") else {
                throw FleetConfigError(file: file, key: reader.keyPath("include"), reason: "is required (paths or globs to fetch)")
            }
            guard !include.isEmpty else { throw reader.failure("include", .array([]), "must name at least one path or glob") }
            let exclude = try reader.stringArray("exclude") ?? []
            for (key, patterns) in [("include", include), ("exclude", exclude)] {
                for (index, pattern) in patterns.enumerated() {
                    if let problem = Fileset.patternProblem(pattern) {
                        throw FleetConfigError(file: file, key: "\(reader.keyPath(key))[\(index)]", value: TOMLNode.quoted(pattern),
                                               reason: problem)
                    }
                }
            }
            let required = try reader.boolean("required") ?? false
            let dest = try localPath(&reader, "dest")
            try reader.finish()
            result.append(Fileset(name: name, include: include, exclude: exclude, required: required, dest: dest))
        }
        try table.finish()
        return result
    }

    // MARK: Shared value kinds

    /// An access point URL: http:// or https:// with a host.
    private func remoteServer(_ reader: inout TableReader) throws(FleetConfigError) -> String? {
        guard let text = try reader.string("remote_server") else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https" else {
            throw reader.failure("remote_server", .string(text), "must be an http:// or https:// URL")
        }
        guard let host = components.host, !host.isEmpty else {
            throw reader.failure("remote_server", .string(text), "has no host")
        }
        return text
    }

    /// A path on this machine: `~` and `~/...` are the user's home, a relative path is taken
    /// from the config file's directory (so the leader service, whatever its working
    /// directory, reads the same file).
    private func localPath(_ reader: inout TableReader, _ key: String) throws(FleetConfigError) -> String? {
        guard let text = try reader.string(key) else { return nil }
        if text == "~" { return context.homeDirectory }
        if text.hasPrefix("~/") { return (context.homeDirectory as NSString).appendingPathComponent(String(text.dropFirst(2))) }
        if text.hasPrefix("~") { throw reader.failure(key, .string(text), "'~user' is not supported (use ~/ or an absolute path)") }
        if text.hasPrefix("/") { return text }
        let base = ((file as NSString).deletingLastPathComponent as NSString)
        let directory = base.length == 0 ? FileManager.default.currentDirectoryPath : base as String
        return (directory as NSString).appendingPathComponent(text)
    }
}
