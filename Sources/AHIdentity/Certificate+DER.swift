import SwiftASN1
import X509

extension Certificate {
    /// The certificate's DER encoding: what pins are computed over and what goes into PEM.
    public func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }

    /// The URI SANs of the certificate (in order); empty when there is no SAN extension.
    public func uriSANs() throws -> [String] {
        guard let sans = try extensions.subjectAlternativeNames else { return [] }
        return sans.compactMap { name in
            if case .uniformResourceIdentifier(let uri) = name { return uri }
            return nil
        }
    }
}
