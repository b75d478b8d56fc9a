/// A validated SPIFFE ID: `spiffe://TRUST_DOMAIN/PATH`.
///
/// Instances can only be made through the validating initialisers, so any `SPIFFEID` value
/// satisfies the SPIFFE ID specification; code that receives one never re-checks it.
/// Equality is byte-exact on the trust domain and the path (the spec makes IDs case sensitive
/// in the path, and the trust domain is always lower case).
public struct SPIFFEID: Hashable, Sendable, CustomStringConvertible {
    /// The trust domain, e.g. `example.org`.
    public let trustDomain: String
    /// The path: "" or a string starting with "/" (e.g. `/ah/agent/node1`).
    public let path: String

    /// Parses and validates a SPIFFE ID string.
    public init(parsing string: String) throws(SPIFFEIDError) {
        let parts = try SPIFFEIDGrammar.parse(string)
        self.trustDomain = parts.trustDomain
        self.path = parts.path
    }

    /// Builds an ID from its parts, validating each and the total length.
    public init(trustDomain: String, path: String) throws(SPIFFEIDError) {
        let whole = SPIFFEIDGrammar.scheme + trustDomain + path
        try SPIFFEIDGrammar.validateTrustDomain(trustDomain, input: whole)
        try SPIFFEIDGrammar.validatePath(path, input: whole)
        if whole.utf8.count > SPIFFEIDGrammar.maxIDLength { throw SPIFFEIDError(input: whole, rule: .tooLong) }
        self.trustDomain = trustDomain
        self.path = path
    }

    /// `spiffe://TD/path`.
    public var description: String { SPIFFEIDGrammar.scheme + trustDomain + path }

    /// The path's segments, e.g. `["ah", "agent", "node1"]`; empty for a trust-domain-only ID.
    public func segments() -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }

    /// Whether `segment` could be one path segment of a SPIFFE ID (e.g. a node name).
    public static func isValidPathSegment(_ segment: String) -> Bool {
        do {
            try SPIFFEIDGrammar.validateSegment(segment.utf8, input: segment)
            return true
        } catch {
            return false
        }
    }
}

/// Encoded as the single string `spiffe://TD/path`, which is how IDs appear in configs and APIs.
extension SPIFFEID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        do {
            try self.init(parsing: string)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
