/// Why a string is not a SPIFFE ID (or not a peer policy).
///
/// The description names the offending input and the rule it breaks, so that an operator
/// reading a log line or a CLI error knows exactly which value to fix and how.
public struct SPIFFEIDError: Error, CustomStringConvertible, Sendable, Hashable {
    /// The rules of the SPIFFE ID specification (and of `ah`'s policy syntax) that parsing enforces.
    public enum Rule: String, Sendable, Hashable, CaseIterable {
        case empty = "must not be empty"
        case scheme = "must start with the scheme 'spiffe://' (lower case)"
        case tooLong = "must be at most 2048 bytes long"
        case query = "must not contain a query ('?')"
        case fragment = "must not contain a fragment ('#')"
        case percentEncoding = "must not contain percent-encoding ('%')"
        case missingTrustDomain = "must have a non-empty trust domain"
        case trustDomainTooLong = "trust domain must be at most 255 bytes long"
        case trustDomainUppercase = "trust domain must be lower case"
        case trustDomainUserinfo = "trust domain must not contain userinfo ('@')"
        case trustDomainPort = "trust domain must not contain a port (':')"
        case trustDomainCharacter = "trust domain may contain only a-z, 0-9, '.', '-', '_'"
        case pathStart = "path must be empty or start with '/'"
        case trailingSlash = "path must not end with '/'"
        case emptySegment = "path segments must not be empty ('//')"
        case dotSegment = "path segments must not be '.' or '..'"
        case segmentCharacter = "path segments may contain only letters, digits, '.', '-', '_'"
        case policyWildcard = "a policy wildcard may only appear as a final '/*'"
    }

    /// The string that was rejected (for policies, the whole policy string).
    public let input: String
    public let rule: Rule

    public init(input: String, rule: Rule) {
        self.input = input
        self.rule = rule
    }

    public var description: String {
        "invalid SPIFFE ID \"\(Self.excerpt(input))\": \(rule.rawValue)"
    }

    /// Inputs can be up to megabytes when they come from the network; keep error lines short.
    private static func excerpt(_ s: String) -> String {
        guard s.utf8.count > 120 else { return s }
        return String(s.prefix(100)) + "…(\(s.utf8.count) bytes)"
    }
}
