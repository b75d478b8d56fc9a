// Long-lived TLS configuration, loaded once and shared by every connection: the server's
// certificate chain and key, or the client's trust anchors, plus the protocol priorities.

internal import CGnuTLSStream

/// Protocol versions and algorithms: GnuTLS's NORMAL set restricted to TLS 1.3 and 1.2.
/// (NORMAL already excludes SSL 3, RC4, export and NULL ciphers; 1.0/1.1 are removed here.)
let tlsPriorityString = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/// Ownership of the C objects shared by sessions. A context owns its credentials and
/// priority cache and frees them in `deinit`; every `GnuTLSSession` holds a strong
/// reference to its context, so they outlive all sessions that use them. GnuTLS only reads
/// them after set-up, so sharing them across event loops is safe (hence `@unchecked Sendable`).
class TLSContextStorage {
    let credentials: gnutls_certificate_credentials_t
    let priority: gnutls_priority_t

    init(credentials: gnutls_certificate_credentials_t) throws {
        var priority: gnutls_priority_t?
        var errorPosition: UnsafePointer<CChar>?
        let rv = gnutls_priority_init(&priority, tlsPriorityString, &errorPosition)
        guard rv >= 0, let priority else {
            gnutls_certificate_free_credentials(credentials)
            let at = errorPosition.map { " at \"\(String(cString: $0))\"" } ?? ""
            throw TLSError.configuration("priority string \"\(tlsPriorityString)\"\(at): \(gnutlsMessage(rv))")
        }
        self.credentials = credentials
        self.priority = priority
    }

    deinit {
        gnutls_priority_deinit(priority)
        gnutls_certificate_free_credentials(credentials)
    }
}

/// The server side: a certificate chain and its private key. Create once, share by all
/// connections (`GnuTLSHandler.server(context:)`). No client certificates are requested.
public final class TLSServerContext: @unchecked Sendable {
    let storage: TLSContextStorage

    /// - Parameters:
    ///   - certificateChainFile: PEM file with the leaf certificate first, followed by any
    ///     intermediates.
    ///   - privateKeyFile: PEM private key (PKCS#1, SEC1 or unencrypted PKCS#8).
    /// - Throws: `TLSError.badFile` naming the file that is missing, unreadable or invalid,
    ///   or both files when the key does not match the certificate.
    public init(certificateChainFile: String, privateKeyFile: String) throws {
        var credentials: gnutls_certificate_credentials_t?
        var which = AH_TLS_FILE_NONE
        let rv = ah_stream_tls_server_credentials_new(&credentials, certificateChainFile, privateKeyFile, &which)
        guard rv >= 0, let credentials else {
            let message = gnutlsMessage(rv)
            switch which {
            case AH_TLS_FILE_CERTIFICATE:
                throw TLSError.badFile(path: certificateChainFile, reason: "certificate chain: \(message)")
            case AH_TLS_FILE_KEY:
                throw TLSError.badFile(path: privateKeyFile, reason: "private key: \(message)")
            case AH_TLS_FILE_PAIR:
                throw TLSError.badFile(path: "\(certificateChainFile) and \(privateKeyFile)",
                                       reason: "certificate and key cannot be used together: \(message)")
            default:
                throw TLSError.configuration("server credentials: \(message)")
            }
        }
        storage = try TLSContextStorage(credentials: credentials)
    }
}

/// The client side: whom to trust. Server certificates are verified against these anchors
/// and against the name given to `GnuTLSHandler.client(context:serverName:)`.
public final class TLSClientContext: @unchecked Sendable {
    let storage: TLSContextStorage
    /// How many trust anchors were loaded.
    public let trustedCertificateCount: Int

    /// - Parameter caFile: PEM file of trusted CA certificates, or `nil` for the system's
    ///   trust store.
    /// - Throws: `TLSError.badFile` if the file is missing or holds no certificate;
    ///   `TLSError.configuration` if the system trust store cannot be loaded or is empty.
    public init(caFile: String?) throws {
        var credentials: gnutls_certificate_credentials_t?
        let rv = ah_stream_tls_client_credentials_new(&credentials, caFile)
        guard rv > 0, let credentials else {
            let message = gnutlsMessage(rv)
            if let caFile {
                throw TLSError.badFile(path: caFile, reason: "CA certificates: \(message)")
            }
            throw TLSError.configuration("system trust store: \(message)")
        }
        trustedCertificateCount = Int(rv)
        storage = try TLSContextStorage(credentials: credentials)
    }
}
