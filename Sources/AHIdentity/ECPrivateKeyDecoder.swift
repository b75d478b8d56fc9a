import Crypto
import SwiftASN1
import X509

/// Decodes EC private keys written by GnuTLS, which swift-crypto rejects.
///
/// SEC1 (RFC 5915) fixes the private scalar's length to the curve size (32 bytes for P-256),
/// but GnuTLS's `certtool` encodes it like an INTEGER: with a leading 0x00 whenever the top
/// bit is set (33 bytes), so about half of its keys fail a strict parser. Bring-your-own PEM
/// files (`--identity files`) are often made with certtool, so we normalise the scalar to the
/// curve size and build the key from its raw representation. Both the bare SEC1 form
/// ("EC PRIVATE KEY") and SEC1 inside PKCS#8 ("PRIVATE KEY") are handled.
enum ECPrivateKeyDecoder {
    /// A decoded key: its named curve and its scalar, normalised to the curve's size.
    struct Decoded {
        var curve: ASN1ObjectIdentifier
        var scalar: [UInt8]
    }

    static func decode(_ document: PEMDocument) throws -> Certificate.PrivateKey {
        let key = try decodeScalar(document)
        switch key.curve {
        case .NamedCurves.secp256r1: return .init(try P256.Signing.PrivateKey(rawRepresentation: key.scalar))
        case .NamedCurves.secp384r1: return .init(try P384.Signing.PrivateKey(rawRepresentation: key.scalar))
        default: return .init(try P521.Signing.PrivateKey(rawRepresentation: key.scalar))
        }
    }

    static func decodeP256(_ document: PEMDocument) throws -> P256.Signing.PrivateKey {
        let key = try decodeScalar(document)
        guard key.curve == .NamedCurves.secp256r1 else { throw IdentityError("EC key is on curve \(key.curve), not P-256") }
        return try P256.Signing.PrivateKey(rawRepresentation: key.scalar)
    }

    static func decodeScalar(_ document: PEMDocument) throws -> Decoded {
        switch document.discriminator {
        case "EC PRIVATE KEY":
            return try decodeSEC1(document.derBytes, curve: nil)
        case "PRIVATE KEY":
            return try decodePKCS8(document.derBytes)
        default:
            throw IdentityError("not an EC private key (\(document.discriminator))")
        }
    }

    /// PKCS#8: SEQUENCE { version, AlgorithmIdentifier { id-ecPublicKey, curve }, OCTET STRING sec1, ... }
    static func decodePKCS8(_ der: [UInt8]) throws -> Decoded {
        let (curve, inner): (ASN1ObjectIdentifier, ArraySlice<UInt8>) = try DER.sequence(DER.parse(der), identifier: .sequence) { nodes in
            _ = try Int(derEncoded: &nodes)
            let (algorithm, curve) = try DER.sequence(of: ASN1ObjectIdentifier.self, identifier: .sequence, nodes: &nodes).pair()
            guard algorithm == .AlgorithmIdentifier.idEcPublicKey else {
                throw IdentityError("PKCS#8 key is not an EC key (algorithm \(algorithm))")
            }
            let inner = try ASN1OctetString(derEncoded: &nodes).bytes
            while nodes.next() != nil {}  // optional attributes / public key: not needed
            return (curve, inner)
        }
        return try decodeSEC1(Array(inner), curve: curve)
    }

    /// SEC1: SEQUENCE { 1, OCTET STRING scalar, [0] curve OPTIONAL, [1] public key OPTIONAL }
    static func decodeSEC1(_ der: [UInt8], curve outerCurve: ASN1ObjectIdentifier?) throws -> Decoded {
        let (scalar, innerCurve): (ArraySlice<UInt8>, ASN1ObjectIdentifier?) = try DER.sequence(DER.parse(der), identifier: .sequence) { nodes in
            guard try Int(derEncoded: &nodes) == 1 else { throw IdentityError("unsupported SEC1 EC key version") }
            let scalar = try ASN1OctetString(derEncoded: &nodes).bytes
            let curve = try DER.optionalExplicitlyTagged(&nodes, tagNumber: 0, tagClass: .contextSpecific) {
                try ASN1ObjectIdentifier(derEncoded: $0)
            }
            while nodes.next() != nil {}  // [1] public key: derived from the scalar instead
            return (scalar, curve)
        }
        guard let curve = innerCurve ?? outerCurve else { throw IdentityError("EC key does not name its curve") }
        let size: Int
        switch curve {
        case .NamedCurves.secp256r1: size = 32
        case .NamedCurves.secp384r1: size = 48
        case .NamedCurves.secp521r1: size = 66
        default: throw IdentityError("unsupported EC curve \(curve)")
        }
        return Decoded(curve: curve, scalar: try normalise(scalar, to: size))
    }

    /// Strips leading zero bytes beyond `size` and left-pads short scalars with zeros.
    static func normalise(_ scalar: ArraySlice<UInt8>, to size: Int) throws -> [UInt8] {
        var bytes = scalar.drop { $0 == 0 }
        guard bytes.count <= size else { throw IdentityError("EC private scalar is \(scalar.count) bytes, longer than the curve's \(size)") }
        if bytes.isEmpty { bytes = [0] }
        return Array(repeating: 0, count: size - bytes.count) + bytes
    }
}

private extension Array where Element == ASN1ObjectIdentifier {
    func pair() throws -> (ASN1ObjectIdentifier, ASN1ObjectIdentifier) {
        guard count == 2 else { throw IdentityError("EC AlgorithmIdentifier must hold the algorithm and a named curve") }
        return (self[0], self[1])
    }
}
