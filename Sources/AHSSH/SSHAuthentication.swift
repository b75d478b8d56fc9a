import Foundation

/// How the session proves who we are. There is deliberately no password case.
public enum SSHAuthentication: Sendable, Equatable {
    /// An OpenSSH private key file without passphrase (Ed25519 or ECDSA); the public half is
    /// derived from it.
    case keyFile(String)
    /// Every identity of the ssh-agent at `SSH_AUTH_SOCK`, in the agent's order.
    case agent
}

/// Host key fingerprints the way OpenSSH prints them: `SHA256:` + base64 without padding.
public enum SSHHostKeyFingerprint {
    public static func sha256(digest: [UInt8]) -> String {
        var encoded = Data(digest).base64EncodedString()
        while encoded.hasSuffix("=") { encoded.removeLast() }
        return "SHA256:" + encoded
    }

    /// Fingerprints compare exactly except for surrounding white space; the `SHA256:` prefix
    /// is required (MD5 fingerprints are not accepted).
    static func normalized(_ fingerprint: String) -> String {
        fingerprint.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
