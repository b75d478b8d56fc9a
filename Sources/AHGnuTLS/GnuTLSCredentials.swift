// Certificate credentials (our chain and key, the CAs we trust), shared by sessions.

import CGnuTLS

/// Owns one `gnutls_certificate_credentials_t`, freed by
/// `gnutls_certificate_free_credentials` in `deinit`. Sessions only reference credentials,
/// so whoever creates sessions keeps this object alive for as long as any of them exists
/// (AHQUIC: the connection holds the endpoint's credentials; AHTLS: the session holds its
/// context). Configure it completely (`setKeyPair`, `addTrust...`) before the first session
/// uses it; from then on GnuTLS only reads it, so one object may serve sessions on
/// several event loops (hence `@unchecked Sendable`).
package final class GnuTLSCredentials: @unchecked Sendable {
    package let handle: gnutls_certificate_credentials_t

    package init() throws(GnuTLSError) {
        var credentials: gnutls_certificate_credentials_t?
        let rv = gnutls_certificate_allocate_credentials(&credentials)
        guard rv >= 0, let credentials else {
            throw GnuTLSError(rv < 0 ? rv : GNUTLS_E_MEMORY_ERROR, action: "allocate certificate credentials")
        }
        handle = credentials
    }

    deinit {
        gnutls_certificate_free_credentials(handle)
    }

    /// Adds our certificate chain (PEM, leaf first) and its private key (PEM).
    /// - Throws: `GnuTLSError` whose `input` says which one is bad, or `.keyPair` when
    ///   both parse but do not belong together.
    package func setKeyPair(chainPEM: [UInt8], keyPEM: [UInt8]) throws(GnuTLSError) {
        var which = AH_GNUTLS_INPUT_NONE
        let rv = withDatum(chainPEM) { chain in
            withDatum(keyPEM) { key in ah_gnutls_credentials_set_key_pair(handle, chain, key, &which) }
        }
        try Self.checkKeyPair(rv, which)
    }

    /// `setKeyPair(chainPEM:keyPEM:)` with both read from files (unreadable files are
    /// reported as their input; the key's buffer is wiped before it is freed).
    package func setKeyPair(chainFile: String, keyFile: String) throws(GnuTLSError) {
        var which = AH_GNUTLS_INPUT_NONE
        let rv = ah_gnutls_credentials_set_key_pair_files(handle, chainFile, keyFile, &which)
        try Self.checkKeyPair(rv, which)
    }

    /// Trusts the PEM CA certificates in `pem`. Returns how many were added (> 0).
    package func addTrust(pem: [UInt8]) throws(GnuTLSError) -> Int {
        let count = withDatum(pem) { gnutls_certificate_set_x509_trust_mem(handle, $0, GNUTLS_X509_FMT_PEM) }
        return try Self.checkTrust(count, "load the trust bundle")
    }

    /// Trusts the PEM CA certificates in the file at `path`. Returns how many (> 0).
    package func addTrust(file path: String) throws(GnuTLSError) -> Int {
        let count = gnutls_certificate_set_x509_trust_file(handle, path, GNUTLS_X509_FMT_PEM)
        return try Self.checkTrust(count, "load CA certificates from \(path)")
    }

    /// Trusts the system's trust store. Returns how many anchors it held (> 0).
    package func addSystemTrust() throws(GnuTLSError) -> Int {
        try Self.checkTrust(gnutls_certificate_set_x509_system_trust(handle), "load the system trust store")
    }

    /// The DER of our own leaf certificate (first certificate of the first chain), if any.
    package func leafCertificateDER() -> [UInt8]? {
        var datum = gnutls_datum_t()
        // The datum points into the credentials (not a copy): copy it out, do not free it.
        guard gnutls_certificate_get_crt_raw(handle, 0, 0, &datum) == 0, let data = datum.data else { return nil }
        return Array(UnsafeBufferPointer(start: data, count: Int(datum.size)))
    }

    private static func checkKeyPair(_ rv: Int32, _ which: ah_gnutls_input_t) throws(GnuTLSError) {
        guard rv < 0 else { return }
        switch which {
        case AH_GNUTLS_INPUT_CERTIFICATE:
            throw GnuTLSError(rv, action: "read the certificate chain", input: .certificateChain)
        case AH_GNUTLS_INPUT_KEY:
            throw GnuTLSError(rv, action: "read the private key", input: .privateKey)
        case AH_GNUTLS_INPUT_PAIR:
            throw GnuTLSError(rv, action: "use the certificate and private key together", input: .keyPair)
        default:
            throw GnuTLSError(rv, action: "load the certificate and private key")
        }
    }

    /// Zero certificates is an error too: an empty trust bundle trusts nobody.
    private static func checkTrust(_ count: Int32, _ action: String) throws(GnuTLSError) -> Int {
        guard count > 0 else {
            throw GnuTLSError(count < 0 ? count : GNUTLS_E_NO_CERTIFICATE_FOUND, action: action, input: .trustBundle)
        }
        return Int(count)
    }
}

/// Runs `body` with a datum over a private copy of `bytes` (GnuTLS's datums are mutable
/// pointers; the copy keeps the caller's array untouched).
private func withDatum<R>(_ bytes: [UInt8], _ body: (UnsafePointer<gnutls_datum_t>) -> R) -> R {
    var copy = bytes
    return copy.withUnsafeMutableBufferPointer { buffer in
        var datum = gnutls_datum_t(data: buffer.baseAddress, size: UInt32(buffer.count))
        return body(&datum)
    }
}
