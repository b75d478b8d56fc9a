/// The answer to "may this user do this on this executor?", with a reason for the audit log
/// and the 403 body: an operator debugging a refusal needs to know which rule (or its
/// absence) decided.
public enum AccessDecision: Sendable, Equatable, CustomStringConvertible {
    case allow(reason: String)
    case deny(reason: String)

    public var isAllowed: Bool {
        if case .allow = self { return true }
        return false
    }

    public var reason: String {
        switch self {
        case .allow(let reason), .deny(let reason): return reason
        }
    }

    public var description: String { (isAllowed ? "allow: " : "deny: ") + reason }
}
