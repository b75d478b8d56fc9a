// What both TLS stacks read from a GnuTLS session or its verification result, as text.

import CGnuTLS

package enum GnuTLSSessionFacts {
    /// GnuTLS's explanation of certificate verification status bits ("The certificate is
    /// NOT trusted. The certificate issuer is unknown."), without trailing blanks.
    package static func verificationStatusText(_ status: UInt32) -> String {
        var out = gnutls_datum_t()
        guard gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &out, 0) == 0,
              let data = out.data else { return "verification status 0x\(String(status, radix: 16))" }
        // Allocated by GnuTLS for us.
        defer { ah_gnutls_free(data) }
        var text = String(decoding: UnsafeBufferPointer(start: data, count: Int(out.size)), as: UTF8.self)
        while text.last == " " {
            text.removeLast()
        }
        return text
    }

    /// The ALPN protocol the handshake selected, if any (the datum points into the session).
    package static func selectedALPN(_ session: gnutls_session_t) -> String? {
        var proto = gnutls_datum_t()
        guard gnutls_alpn_get_selected_protocol(session, &proto) == 0, let data = proto.data, proto.size > 0 else {
            return nil
        }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(proto.size)), as: UTF8.self)
    }
}
