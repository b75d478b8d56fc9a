/// Where one identity's files are: what a transport needs to present and verify certificates.
///
/// Plain paths (not URLs) because they go straight to GnuTLS and into command lines.
public struct IdentityFiles: Sendable, Hashable, Codable {
    /// PEM certificate file: the leaf first, optionally followed by its chain.
    public var certPath: String
    /// PEM private key (PKCS#8), mode 0600.
    public var keyPath: String
    /// PEM trust bundle: the CA certificate(s) peers are verified against.
    public var caPath: String

    public init(certPath: String, keyPath: String, caPath: String) {
        self.certPath = certPath
        self.keyPath = keyPath
        self.caPath = caPath
    }
}
