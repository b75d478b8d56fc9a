// Long-lived TLS configuration, loaded once and shared by every connection: the server's
// certificate chain and key, or the client's trust anchors, plus the protocol priorities.

internal import AHGnuTLS
internal import CGnuTLS

/// Ownership of the C objects shared by sessions. Each belongs to its AHGnuTLS type, which
/// frees it in `deinit` (`GnuTLSCredentials`: gnutls_certificate_free_credentials;
/// `GnuTLSPriorities`: gnutls_priority_deinit); a context holds both, and every
/// `GnuTLSSession` holds a strong reference to its context, so they outlive all sessions
/// that use them. GnuTLS only reads them after set-up, so sharing them across event loops
/// is safe (hence `@unchecked Sendable` on the public contexts).
final class TLSContextStorage {
    private let gnutlsCredentials: GnuTLSCredentials
    private let priorities: GnuTLSPriorities

    var credentials: gnutls_certificate_credentials_t { gnutlsCredentials.handle }
    var priority: gnutls_priority_t { priorities.handle }

    init(credentials: GnuTLSCredentials) throws {
        do {
            priorities = try GnuTLSPriorities(GnuTLSPriorities.stream)
        } catch {
            throw TLSError.configuration("\(error)")
        }
        gnutlsCredentials = credentials
    }
}

/// GnuTLS could not even allocate credentials (out of memory): not about any file.
private func allocateCredentials() throws -> GnuTLSCredentials {
    do {
        return try GnuTLSCredentials()
    } catch {
        throw TLSError.configuration("\(error)")
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
        let credentials = try allocateCredentials()
        do throws(GnuTLSError) {
            try credentials.setKeyPair(chainFile: certificateChainFile, keyFile: privateKeyFile)
        } catch {
            switch error.input {
            case .certificateChain:
                throw TLSError.badFile(path: certificateChainFile, reason: "certificate chain: \(error.reason)")
            case .privateKey:
                throw TLSError.badFile(path: privateKeyFile, reason: "private key: \(error.reason)")
            case .keyPair:
                throw TLSError.badFile(path: "\(certificateChainFile) and \(privateKeyFile)",
                                       reason: "certificate and key cannot be used together: \(error.reason)")
            case .trustBundle, nil:
                throw TLSError.configuration("server credentials: \(error)")
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
        let credentials = try allocateCredentials()
        do throws(GnuTLSError) {
            if let caFile {
                trustedCertificateCount = try credentials.addTrust(file: caFile)
            } else {
                trustedCertificateCount = try credentials.addSystemTrust()
            }
        } catch {
            if let caFile {
                throw TLSError.badFile(path: caFile, reason: "CA certificates: \(error.reason)")
            }
            throw TLSError.configuration("system trust store: \(error.reason)")
        }
        storage = try TLSContextStorage(credentials: credentials)
    }
}
