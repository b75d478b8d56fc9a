/// What a user asks to do on an executor; ACL rules grant verbs, not roles.
///
/// - ssh: a CONNECT tunnel to the executor's sshd
/// - exec: running a command through the access point
/// - read: seeing the executor's sessions and events
public enum Verb: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case ssh
    case exec
    case read

    public var description: String { rawValue }

    /// "exec, read, ssh": for messages that list the accepted values.
    public static var namesForHelp: String { allCases.map(\.rawValue).sorted().joined(separator: ", ") }
}
