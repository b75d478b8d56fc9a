/// Who may do what on which executors: `[[serve.acl]]` rules in the server's config.
///
/// Roles set the ceiling and the ACL narrows it for everyone below admin:
/// - admin: everything, whatever the ACL says (so an admin can never lock themselves out);
/// - viewer: never `ssh` or `exec`; `read` as an operator would get it;
/// - operator: with no `acl` configured at all, everything (a fresh access point works out of
///   the box; the server warns at start); with an `acl`, even an empty one, only what a rule
///   grants: its subject, one of its executor selectors and one of its verbs must all match.
///
/// Viewers are held to the ACL for `read` too, so a lower role never gets more than a higher one.
public struct AccessControlList: Sendable, Equatable {
    /// One grant: `subject` (or `*`) may use `verbs` on executors matching any of `executors`.
    public struct Rule: Sendable, Equatable {
        /// `*` for any subject, else the token's subject exactly.
        public var subject: String
        public var executors: [ExecutorSelector]
        public var verbs: [Verb]

        public init(subject: String, executors: [ExecutorSelector], verbs: [Verb]) {
            self.subject = subject
            self.executors = executors
            self.verbs = verbs
        }

        func grants(subject: String, executor: String, tags: [String: String], verb: Verb) -> Bool {
            (self.subject == "*" || self.subject == subject)
                && verbs.contains(verb)
                && executors.contains { $0.matches(executor: executor, tags: tags) }
        }
    }

    /// nil when the config has no `acl` at all, which is not the same as an empty list.
    private let configuredRules: [Rule]?

    /// No `acl` key in the config: operators may use every executor.
    public static let unconfigured = AccessControlList(configuredRules: nil)

    /// A configured ACL; `[]` grants operators nothing.
    public init(rules: [Rule]) { configuredRules = rules }

    private init(configuredRules: [Rule]?) { self.configuredRules = configuredRules }

    public var isConfigured: Bool { configuredRules != nil }
    public var rules: [Rule] { configuredRules ?? [] }

    public func decide(subject: String, role: Role, executor: String, tags: [String: String], verb: Verb) -> AccessDecision {
        let request = "'\(verb)' on '\(executor)' to '\(subject)'"
        switch role {
        case .admin:
            return .allow(reason: "role admin grants \(request)")
        case .viewer where verb != .read:
            return .deny(reason: "role viewer may only 'read'; it cannot grant \(request)")
        case .viewer, .operator:
            guard let rules = configuredRules else {
                return .allow(reason: "no ACL is configured, so role \(role) grants \(request)")
            }
            if let index = rules.firstIndex(where: { $0.grants(subject: subject, executor: executor, tags: tags, verb: verb) }) {
                return .allow(reason: "ACL rule \(index + 1) grants \(request)")
            }
            return .deny(reason: "no ACL rule grants \(request)")
        }
    }
}
