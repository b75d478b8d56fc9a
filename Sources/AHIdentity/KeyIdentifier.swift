import Crypto
import X509

/// Key identifiers for the subjectKeyIdentifier / authorityKeyIdentifier extensions.
///
/// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING contents. Using the
/// same recipe as OpenSSL and GnuTLS means a chain built by `ah` links the same way as one
/// built by `certtool`. (Despite its name, `subjectPublicKeyInfoBytes` is exactly that BIT
/// STRING's contents, e.g. the uncompressed EC point, not the whole SPKI.)
enum KeyIdentifier {
    static func of(_ publicKey: Certificate.PublicKey) -> ArraySlice<UInt8> {
        ArraySlice(Insecure.SHA1.hash(data: Array(publicKey.subjectPublicKeyInfoBytes)))
    }
}
