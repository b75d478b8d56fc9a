/// ALPN of the enrollment protocol: the only thing a client without a certificate may do.
public let enrollmentALPN = "ah-enroll/1"
/// ALPN of the mutually authenticated control connection.
public let controlALPN = "ah/1"

/// Executor → access point, first and only message on an enrollment connection.
public struct EnrollRequest: Codable, Sendable, Equatable {
    public var version: Int
    /// The join token, as printed by `ah token create`.
    public var token: String
    /// The executor's chosen name (one SPIFFE path segment).
    public var name: String
    /// PKCS#10 request (PEM) for a key the executor generated; only its key is used.
    public var csr: String
    /// Tags the executor asks for; tags bound to the token take precedence.
    public var tags: [String: String]

    public init(token: String, name: String, csr: String, tags: [String: String]) {
        self.version = 1
        self.token = token
        self.name = name
        self.csr = csr
        self.tags = tags
    }
}

/// Access point → executor: the SVID, or why not.
public struct EnrollResponse: Codable, Sendable, Equatable {
    public var version: Int
    public var ok: Bool
    /// PEM certificate (leaf) for the executor's key, on success.
    public var certificate: String?
    /// PEM trust bundle (the trust domain's CA), on success.
    public var caBundle: String?
    public var spiffeID: String?
    /// Machine-readable refusal reason (`token-expired`, `name-taken`, ...), on failure.
    public var error: String?
    /// Human-readable refusal, on failure.
    public var message: String?

    public static func success(certificate: String, caBundle: String, spiffeID: String) -> EnrollResponse {
        EnrollResponse(version: 1, ok: true, certificate: certificate, caBundle: caBundle, spiffeID: spiffeID, error: nil, message: nil)
    }

    public static func failure(_ code: String, _ message: String) -> EnrollResponse {
        EnrollResponse(version: 1, ok: false, certificate: nil, caBundle: nil, spiffeID: nil, error: code, message: message)
    }
}

/// Executor → access point over the authenticated connection: a new certificate for the
/// same identity (the server takes the identity from the TLS session, never from the CSR).
public struct RenewRequest: Codable, Sendable, Equatable {
    public var version: Int
    public var type: String
    public var csr: String

    public init(csr: String) {
        self.version = 1
        self.type = "renew"
        self.csr = csr
    }
}
