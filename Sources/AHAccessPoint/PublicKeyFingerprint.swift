import Crypto
import SwiftASN1
import X509

/// SHA-256 over a key's DER SubjectPublicKeyInfo: how the access point binds an executor
/// name to one key. The transport computes the same value from the peer's certificate
/// (GnuTLS `gnutls_pubkey_export2`), so the two can be compared during the handshake.
public enum PublicKeyFingerprint {
    public static func sha256(_ key: Certificate.PublicKey) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(key)
        return Array(SHA256.hash(data: serializer.serializedBytes))
    }
}
