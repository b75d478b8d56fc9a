// Errors from TLS over TCP: what went wrong, in words an operator can act on. GnuTLS's own
// message is kept verbatim where it is the best explanation.

/// A TLS failure: bad credentials on disk, or a connection whose handshake or records failed.
public enum TLSError: Error, CustomStringConvertible, Sendable {
    /// A certificate, key or CA file could not be used. `path` names the file (both paths,
    /// joined with " and ", when the certificate and key do not belong together).
    case badFile(path: String, reason: String)
    /// GnuTLS refused a setting (priority string, ALPN list, server name, ...).
    case configuration(String)
    /// The handshake failed; `reason` is GnuTLS's message (and the alert, if the peer sent one).
    case handshakeFailed(reason: String)
    /// The peer's certificate chain did not verify, e.g. unknown issuer or wrong name.
    case certificateVerificationFailed(reason: String)
    /// The TCP stream ended before the handshake finished.
    case unexpectedEOF
    /// A record could not be read or written after the handshake (bad MAC, fatal alert, ...).
    case recordFailed(reason: String)
    /// The peer asked for a TLS 1.2 renegotiation, which is refused.
    case renegotiationRefused

    public var description: String {
        switch self {
        case .badFile(let path, let reason):
            return "TLS: cannot use \(path): \(reason)"
        case .configuration(let reason):
            return "TLS: invalid configuration: \(reason)"
        case .handshakeFailed(let reason):
            return "TLS handshake failed: \(reason)"
        case .certificateVerificationFailed(let reason):
            return "TLS certificate verification failed: \(reason)"
        case .unexpectedEOF:
            return "TLS: the connection closed before the handshake completed"
        case .recordFailed(let reason):
            return "TLS record error: \(reason)"
        case .renegotiationRefused:
            return "TLS: the peer requested a renegotiation, which is not supported"
        }
    }
}
