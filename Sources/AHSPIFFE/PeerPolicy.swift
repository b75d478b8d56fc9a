/// Which peer SPIFFE IDs a connection endpoint accepts.
///
/// The transport checks every peer's (already chain-verified) SPIFFE ID against a policy
/// before it lets any application data through; a policy is therefore deliberately small and
/// explicit: exact IDs, path-prefix subtrees of one trust domain, and unions of those.
public enum PeerPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Exactly this ID.
    case exact(SPIFFEID)
    /// IDs in `trustDomain` whose path equals `pathPrefix` or starts with `pathPrefix + "/"`.
    /// `pathPrefix` "" matches every ID of the trust domain. The boundary is a whole segment:
    /// `/ah/agent` matches `/ah/agent/x` but never `/ah/agentx`.
    case prefix(trustDomain: String, pathPrefix: String)
    /// Any of the listed policies; an empty list allows nobody.
    case anyOf([PeerPolicy])

    /// Parses `spiffe://TD/path` (exact), `spiffe://TD/path/*` (that subtree) or `spiffe://TD/*`
    /// (the whole trust domain).
    public init(parsing string: String) throws(SPIFFEIDError) {
        let wildcard = "/*"
        if string.utf8.elementsEqual("spiffe://*".utf8) {
            throw SPIFFEIDError(input: string, rule: .missingTrustDomain)
        }
        if string.utf8.count > wildcard.utf8.count, string.utf8.reversed().starts(with: wildcard.utf8.reversed()) {
            let base = String(Substring(string.utf8.dropLast(wildcard.utf8.count)))
            if base.contains("*") { throw SPIFFEIDError(input: string, rule: .policyWildcard) }
            let id: SPIFFEID
            do {
                id = try SPIFFEID(parsing: base)
            } catch {
                // Report the policy as written, not the truncated base. A base ending in "/"
                // ("spiffe://td/a//*") means an empty segment before the wildcard.
                throw SPIFFEIDError(input: string, rule: error.rule == .trailingSlash ? .emptySegment : error.rule)
            }
            self = .prefix(trustDomain: id.trustDomain, pathPrefix: id.path)
            return
        }
        if string.contains("*") { throw SPIFFEIDError(input: string, rule: .policyWildcard) }
        self = .exact(try SPIFFEID(parsing: string))
    }

    /// Whether the policy admits `id`.
    public func allows(_ id: SPIFFEID) -> Bool {
        switch self {
        case .exact(let allowed):
            return allowed == id
        case .prefix(let trustDomain, let pathPrefix):
            guard id.trustDomain.utf8.elementsEqual(trustDomain.utf8) else { return false }
            let prefix = Self.normalized(pathPrefix)
            if prefix.isEmpty { return true }
            let path = id.path.utf8
            guard path.starts(with: prefix.utf8) else { return false }
            let rest = path.dropFirst(prefix.utf8.count)
            return rest.isEmpty || rest.first == UInt8(ascii: "/")
        case .anyOf(let policies):
            return policies.contains { $0.allows(id) }
        }
    }

    /// `nil` when `id` is allowed; otherwise a violation that names the peer and this policy.
    public func check(_ id: SPIFFEID) -> PeerPolicyViolation? {
        allows(id) ? nil : PeerPolicyViolation(peer: id, policy: self)
    }

    /// Tolerates a hand-built prefix with trailing slashes: "/ah/agent/" means "/ah/agent".
    private static func normalized(_ pathPrefix: String) -> Substring {
        var prefix = Substring(pathPrefix)
        while prefix.utf8.last == UInt8(ascii: "/") { prefix = prefix.dropLast() }
        return prefix
    }

    /// The parseable form for `exact` and `prefix`; `anyOf(a, b)` for unions.
    public var description: String {
        switch self {
        case .exact(let id):
            return id.description
        case .prefix(let trustDomain, let pathPrefix):
            return "spiffe://" + trustDomain + Self.normalized(pathPrefix) + "/*"
        case .anyOf(let policies):
            return "anyOf(" + policies.map(\.description).joined(separator: ", ") + ")"
        }
    }
}

/// A peer whose SPIFFE ID the policy refused; thrown or logged by the transport.
public struct PeerPolicyViolation: Error, Sendable, Hashable, CustomStringConvertible {
    public let peer: SPIFFEID
    public let policy: PeerPolicy

    public init(peer: SPIFFEID, policy: PeerPolicy) {
        self.peer = peer
        self.policy = policy
    }

    public var description: String { "peer \(peer) is not allowed by policy \(policy)" }
}
