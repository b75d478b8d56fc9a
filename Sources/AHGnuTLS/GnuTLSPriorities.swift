// A parsed GnuTLS priority string (protocol versions and algorithms), shared by sessions.

import CGnuTLS

/// Owns one `gnutls_priority_t`. Parsed once per endpoint or TLS context and set on every
/// session (`gnutls_priority_set`); GnuTLS reference-counts the cache, so sessions still
/// alive keep theirs when this object goes. Immutable after `init`, hence shareable.
package final class GnuTLSPriorities: @unchecked Sendable {
    /// QUIC: TLS 1.3 only, without the middlebox compatibility mode QUIC forbids.
    package static let quic = "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE"
    /// TLS over TCP: GnuTLS's NORMAL set restricted to TLS 1.3 and 1.2 (NORMAL already
    /// excludes SSL 3, RC4, export and NULL ciphers; 1.0/1.1 are removed here).
    package static let stream = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

    /// Released by `gnutls_priority_deinit` in `deinit` (a reference drop, see above).
    package let handle: gnutls_priority_t

    /// - Throws: `GnuTLSError` naming the string and where GnuTLS stopped parsing it.
    package init(_ string: String) throws(GnuTLSError) {
        var priority: gnutls_priority_t?
        var errorPosition: UnsafePointer<CChar>?
        let rv = gnutls_priority_init(&priority, string, &errorPosition)
        guard rv >= 0, let priority else {
            let at = errorPosition.map { " at \"\(String(cString: $0))\"" } ?? ""
            throw GnuTLSError(rv < 0 ? rv : GNUTLS_E_INTERNAL_ERROR, action: "use the priority string \"\(string)\"\(at)")
        }
        handle = priority
    }

    deinit {
        gnutls_priority_deinit(handle)
    }
}
