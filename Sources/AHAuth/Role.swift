/// What a user may do, from a JWT's `role` claim. Ordered: each role includes the ones below it,
/// so a route names the least role it needs and `allows` answers with one comparison.
///
/// - viewer: reads (executors, sessions, events)
/// - operator: also opens tunnels where the ACL allows
/// - admin: everything
public enum Role: String, Sendable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case viewer
    case `operator`
    case admin

    private var rank: Int {
        switch self {
        case .viewer: return 0
        case .operator: return 1
        case .admin: return 2
        }
    }

    /// Whether a user with this role may do what `required` is needed for.
    public func allows(_ required: Role) -> Bool { rank >= required.rank }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    public var description: String { rawValue }

    /// "admin, operator, viewer": for messages that list the accepted values.
    public static var namesForHelp: String { allCases.map(\.rawValue).sorted().joined(separator: ", ") }
}
