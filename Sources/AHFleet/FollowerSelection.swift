/// Which followers a `followers run` / `sync-fence` addresses (`--host`, `--tag`, `--all`).
///
/// - No selector, or `--all`: every follower.
/// - `--tag K=V` (repeatable): followers whose tags match every one (AND). A member's `os`
///   counts as tag `os` when its tags do not say it (`FleetMember.selectionTags`).
/// - `--host NAME` (repeatable): adds that follower.
/// - Both: the tag-matched followers plus the named hosts (a union, so `--tag os=linux
///   --host win-1` runs on every Linux follower and on win-1).
///
/// The result is in config order, each follower once. Errors (all exit 2 for the caller):
/// a host that is not a follower, a tag not of the form K=V, tags that match no follower,
/// a fleet without followers. `--all` still checks the hosts and tags given with it, so
/// a typo is never silently ignored.
public struct FollowerSelection: Sendable, Hashable {
    public var hosts: [String]
    public var tags: [String]
    public var all: Bool

    public init(hosts: [String] = [], tags: [String] = [], all: Bool = false) {
        self.hosts = hosts
        self.tags = tags
        self.all = all
    }

    /// Selects from `config`'s followers (the error names the config file when it has none).
    public func select(from config: FleetConfig) throws(SelectionError) -> [FleetMember] {
        try select(from: config.members, source: config.file)
    }

    /// Selects from `members` (leader entries are never selected; naming one is an error).
    public func select(from members: [FleetMember], source: String = "the fleet config") throws(SelectionError) -> [FleetMember] {
        let followers = members.filter { $0.role == .follower }
        var required: [(key: String, value: String)] = []
        for tag in tags {
            guard let parsed = Self.parseTag(tag) else { throw SelectionError.invalidTag(tag) }
            required.append(parsed)
        }
        var named = Set<String>()
        for host in hosts {
            guard let member = members.first(where: { $0.name == host }) else {
                throw SelectionError.unknownHost(host, known: followers.map(\.name))
            }
            guard member.role == .follower else { throw SelectionError.notAFollower(host) }
            named.insert(host)
        }
        guard !followers.isEmpty else { throw SelectionError.noFollowers(source: source) }
        if all || (hosts.isEmpty && tags.isEmpty) { return followers }

        var chosen = Set<String>()
        if !required.isEmpty {
            let matched = followers.filter { member in
                let tags = member.selectionTags
                return required.allSatisfy { tags[$0.key] == $0.value }
            }
            guard !matched.isEmpty else { throw SelectionError.noMatch(tags: tags) }
            chosen.formUnion(matched.map(\.name))
        }
        chosen.formUnion(named)
        return followers.filter { chosen.contains($0.name) }
    }

    /// `K=V` with a non-empty key and value, split at the first `=` (values may contain `=`).
    public static func parseTag(_ text: String) -> (key: String, value: String)? {
        guard let equals = text.firstIndex(of: "=") else { return nil }
        let key = String(text[..<equals])
        let value = String(text[text.index(after: equals)...])
        guard !key.isEmpty, !value.isEmpty else { return nil }
        return (key, value)
    }
}

/// Why a selection cannot be made; `description` is the one line for stderr (exit 2).
public enum SelectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `--host NAME` that no member has; `known` lists the followers.
    case unknownHost(String, known: [String])
    /// `--host NAME` naming the leader entry.
    case notAFollower(String)
    /// `--tag` not of the form K=V.
    case invalidTag(String)
    /// The `--tag`s together match no follower.
    case noMatch(tags: [String])
    /// The config has no follower at all.
    case noFollowers(source: String)

    public var description: String {
        switch self {
        case .unknownHost(let host, let known):
            let list = known.isEmpty ? "none" : known.joined(separator: ", ")
            return "unknown host '\(host)': no follower of that name (followers: \(list))"
        case .notAFollower(let host):
            return "host '\(host)' is the fleet's leader, not a follower"
        case .invalidTag(let tag):
            return "invalid tag '\(tag)': expected KEY=VALUE"
        case .noMatch(let tags):
            return "no follower matches " + tags.map { "--tag \($0)" }.joined(separator: " ")
        case .noFollowers(let source):
            return "the fleet in '\(source)' has no followers"
        }
    }
}
