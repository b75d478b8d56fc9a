import AHGnuTLS
import AHSPIFFE
import CGnuTLS
import Foundation

/// Verifies the peer during the TLS handshake: the chain must be valid against our trust
/// bundle (GnuTLS checks signatures, validity period, key usage) and the leaf must carry
/// exactly one URI SAN that is a valid SPIFFE ID allowed by our policy.
///
/// Runs inside GnuTLS's verify callback, so it must not touch ngtcp2 state.
/// Why a peer was refused, in words for logs and for the CONNECTION_CLOSE reason.
struct PeerRejection: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum PeerCertificateCheck {
    /// The outcome when the peer sent no certificate at all.
    static let noCertificate = "peer presented no certificate"

    static func verify(session: gnutls_session_t, configuration: QUICConfiguration) -> Result<VerifiedPeer, PeerRejection> {
        var count: UInt32 = 0
        guard let certs = gnutls_certificate_get_peers(session, &count), count > 0 else {
            return .failure(PeerRejection(noCertificate))
        }
        // Read the identity before judging the chain so that a refusal can say who it was.
        let presented = uriSANs(ofDER: certs)
        let who = presented.count == 1 ? " presented by \(presented[0])" : ""
        var policy = configuration.peerPolicy
        switch configuration.trust {
        case .bundle:
            var status: UInt32 = 0
            let rc = gnutls_certificate_verify_peers2(session, &status)
            if rc < 0 {
                return .failure(PeerRejection("certificate verification error: \(GnuTLSError.reason(rc))"))
            }
            if status != 0 {
                return .failure(PeerRejection("certificate\(who) not trusted: \(GnuTLSSessionFacts.verificationStatusText(status))"))
            }
        case .pinnedCA(let pin, let expectedPath):
            switch verifyAgainstPin(certs: certs, count: Int(count), pin: pin, who: who) {
            case .failure(let refusal):
                return .failure(refusal)
            case .success(let anchor):
                let caSANs = uriSANs(ofDER: certs + anchor)
                guard caSANs.count == 1, let caID = try? SPIFFEID(parsing: caSANs[0]) else {
                    return .failure(PeerRejection("the pinned CA names no trust domain (URI SAN spiffe://TD)"))
                }
                policy = .prefix(trustDomain: caID.trustDomain, pathPrefix: expectedPath)
            }
        }
        switch presented.count {
        case 0: return .failure(PeerRejection("peer certificate has no URI SAN, so no SPIFFE ID"))
        case 1: break
        default: return .failure(PeerRejection("peer certificate has \(presented.count) URI SANs (\(presented.joined(separator: ", "))); an SVID has exactly one"))
        }
        if isCA(der: certs) {
            return .failure(PeerRejection("peer leaf certificate for \(presented[0]) is a CA certificate"))
        }
        let id: SPIFFEID
        do {
            id = try SPIFFEID(parsing: presented[0])
        } catch {
            return .failure(PeerRejection("peer presented an invalid SPIFFE ID: \(error)"))
        }
        if let violation = policy.check(id) {
            return .failure(PeerRejection("\(violation)"))
        }
        var keyHash = [UInt8](repeating: 0, count: 32)
        guard ah_x509_spki_sha256(certs, &keyHash) == 0 else {
            return .failure(PeerRejection("cannot read the public key of \(id)"))
        }
        var notAfter: Int64 = 0
        var serial = [UInt8](repeating: 0, count: 40)
        var serialLength = serial.count
        guard ah_x509_expiry_and_serial(certs, &notAfter, &serial, &serialLength) >= 0 else {
            return .failure(PeerRejection("cannot read the certificate of \(id)"))
        }
        let peer = VerifiedPeer(id: id, publicKeySHA256: keyHash,
                                notAfter: Date(timeIntervalSince1970: TimeInterval(notAfter)),
                                serialHex: hexString(serial[0..<serialLength]))
        if let authorizer = configuration.peerAuthorizer, let refusal = authorizer(peer) {
            return .failure(PeerRejection("\(id) refused: \(refusal)"))
        }
        return .success(peer)
    }

    /// First contact: the peer's chain must contain the CA whose SHA-256 is `pin`, and the
    /// leaf must verify against that CA alone (validity period included).
    private static func verifyAgainstPin(certs: UnsafePointer<gnutls_datum_t>, count: Int, pin: [UInt8], who: String) -> Result<Int, PeerRejection> {
        var anchor: Int?
        for index in 0..<count {
            var digest = [UInt8](repeating: 0, count: 32)
            let datum = certs[index]
            guard ah_sha256(datum.data, Int(datum.size), &digest) == 0 else { continue }
            if digest == pin { anchor = index }
        }
        guard let anchor else {
            return .failure(PeerRejection("server chain\(who) does not contain the pinned CA sha256:\(hexString(pin))"))
        }
        var status: UInt32 = 0
        let chainLength = max(1, anchor)  // leaf .. up to (not including) the anchor
        let rc = ah_x509_verify_with_ca(certs, UInt32(chainLength), certs + anchor, &status)
        if rc < 0 { return .failure(PeerRejection("certificate verification error: \(GnuTLSError.reason(rc))")) }
        if status != 0 { return .failure(PeerRejection("certificate\(who) not trusted by the pinned CA: \(GnuTLSSessionFacts.verificationStatusText(status))")) }
        return .success(anchor)
    }

    /// URI SANs of a DER certificate; empty if it cannot be parsed.
    static func uriSANs(ofDER datum: UnsafePointer<gnutls_datum_t>) -> [String] {
        var crt: gnutls_x509_crt_t?
        guard gnutls_x509_crt_init(&crt) == 0, let crt else { return [] }
        defer { gnutls_x509_crt_deinit(crt) }
        guard gnutls_x509_crt_import(crt, datum, GNUTLS_X509_FMT_DER) == 0 else { return [] }
        return uriSANs(of: crt)
    }

    static func uriSANs(of crt: gnutls_x509_crt_t) -> [String] {
        var result: [String] = []
        var index: UInt32 = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var size = buffer.count
            let type = gnutls_x509_crt_get_subject_alt_name(crt, index, &buffer, &size, nil)
            if type == GNUTLS_E_SHORT_MEMORY_BUFFER {
                // SPIFFE IDs are at most 2048 bytes; anything longer is not one, but count it.
                result.append("<oversized URI>")
                index += 1
                continue
            }
            if type < 0 { break }
            if type == Int32(GNUTLS_SAN_URI.rawValue) {
                result.append(String(decoding: buffer[0..<size], as: UTF8.self))
            }
            index += 1
        }
        return result
    }

    private static func isCA(der: UnsafePointer<gnutls_datum_t>) -> Bool {
        var crt: gnutls_x509_crt_t?
        guard gnutls_x509_crt_init(&crt) == 0, let crt else { return false }
        defer { gnutls_x509_crt_deinit(crt) }
        guard gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) == 0 else { return false }
        var critical: UInt32 = 0
        var ca: UInt32 = 0
        var pathLen: Int32 = 0
        let rc = gnutls_x509_crt_get_basic_constraints(crt, &critical, &ca, &pathLen)
        return rc >= 0 && ca != 0
    }
}

extension TLSCredentials {
    /// The SPIFFE ID in our own leaf certificate (first certificate of the first chain).
    public func localSPIFFEID() -> SPIFFEID? {
        guard var der = credentials.leafCertificateDER() else { return nil }
        let sans = der.withUnsafeMutableBufferPointer { bytes in
            var datum = gnutls_datum_t(data: bytes.baseAddress, size: UInt32(bytes.count))
            return PeerCertificateCheck.uriSANs(ofDER: &datum)
        }
        guard sans.count == 1 else { return nil }
        return try? SPIFFEID(parsing: sans[0])
    }
}
