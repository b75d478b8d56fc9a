// The one error type for a failed GnuTLS call, used by the QUIC and the TLS-over-TCP code:
// what we were doing, plus GnuTLS's error name and text, as a sentence.

import CGnuTLS

/// A GnuTLS call failed. `description` reads "cannot load the trust bundle: Error while
/// reading file (GNUTLS_E_FILE_ERROR)"; `reason` is the part after the colon, for errors
/// that carry GnuTLS's explanation inside their own sentence.
package struct GnuTLSError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The negative GNUTLS_E_* code.
    package let code: Int32
    /// What we were doing, as a verb phrase ("load the trust bundle").
    package let action: String
    /// GnuTLS's symbolic name of `code`, e.g. "GNUTLS_E_FILE_ERROR".
    package let name: String
    /// GnuTLS's text for `code`, without the final period.
    package let text: String
    /// Which credential input the failure is about, when it is about one.
    package let input: CredentialInput?

    /// The inputs of a certificate credential.
    package enum CredentialInput: Sendable, Equatable {
        case certificateChain
        case privateKey
        /// Both parse, but the key does not belong to the certificate.
        case keyPair
        case trustBundle
    }

    package init(_ code: Int32, action: String, input: CredentialInput? = nil) {
        self.code = code
        self.action = action
        self.input = input
        name = Self.name(of: code)
        text = Self.text(of: code)
    }

    /// GnuTLS's text and name, "A TLS fatal alert has been received (GNUTLS_E_FATAL_ALERT_RECEIVED)".
    package var reason: String { "\(text) (\(name))" }

    package var description: String { "cannot \(action): \(reason)" }

    /// The reason for any GnuTLS code without building an error (record and handshake
    /// failures, which the TLS handler reports in its own error type).
    package static func reason<Code: BinaryInteger>(_ code: Code) -> String {
        let code = Int32(truncatingIfNeeded: code)
        return "\(text(of: code)) (\(name(of: code)))"
    }

    private static func name(of code: Int32) -> String {
        gnutls_strerror_name(code).map { String(cString: $0) } ?? "GnuTLS error \(code)"
    }

    private static func text(of code: Int32) -> String {
        var text = String(cString: gnutls_strerror(code))
        while text.last == "." || text.last == " " {
            text.removeLast()
        }
        return text
    }
}
