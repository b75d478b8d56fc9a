import Foundation

/// A compact JWT's header and payload read *without* checking the signature.
///
/// Only for choosing how to verify (which issuer, which key, which algorithm): nothing read
/// here may decide access. Bounded, because it runs before any signature check on whatever a
/// client sends.
struct UnverifiedJWT {
    /// Larger tokens are refused outright: real ones are well under 2 KiB, and the limit caps
    /// the base64 and JSON work an unauthenticated client can cause.
    static let maxTokenBytes = 8 * 1024

    let header: [String: Any]
    let payload: [String: Any]

    init(_ token: String) throws(UserTokenError) {
        let bytes = token.utf8
        guard bytes.count <= Self.maxTokenBytes else { throw .malformed }
        let segments = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard segments.count == 3 else { throw .malformed }
        header = try Self.object(segments[0])
        payload = try Self.object(segments[1])
    }

    /// `alg`, which must be a string when present.
    var algorithm: String? { header["alg"] as? String }

    /// A string claim of the payload; nil when absent or not a string.
    func payloadString(_ name: String) -> String? { payload[name] as? String }

    private static func object(_ segment: Substring.UTF8View) throws(UserTokenError) -> [String: Any] {
        guard let data = base64URLDecode(segment),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .malformed
        }
        return object
    }

    /// RFC 4648 §5 without padding, as JWS uses it; nil for any other character.
    static func base64URLDecode(_ segment: some Collection<UInt8>) -> Data? {
        var text = String(decoding: segment, as: UTF8.self)
        guard text.utf8.allSatisfy({ byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }) else { return nil }
        text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text)
    }
}
