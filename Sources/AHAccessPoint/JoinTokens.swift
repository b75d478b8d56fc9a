import Crypto
import Foundation

/// Join tokens look like `ahjt.<id>.<secret>`: the id is public (listing, revocation,
/// history), the secret is 32 random bytes. Only SHA-256 of the whole token is stored, so
/// the state file never holds a usable token.
public enum JoinTokens {
    public struct Minted: Sendable {
        public let token: String
        public let id: String
        public let hash: [UInt8]
    }

    public static func mint() -> Minted {
        let id = randomBase32(count: 10)
        var secret = [UInt8](repeating: 0, count: 32)
        var secureGenerator = SystemRandomNumberGenerator()
        for i in secret.indices { secret[i] = UInt8.random(in: 0...255, using: &secureGenerator) }
        let token = "ahjt.\(id).\(base64URL(secret))"
        return Minted(token: token, id: id, hash: hash(token))
    }

    public static func hash(_ token: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(token.utf8)))
    }

    /// A quick shape check so garbage is refused with a precise reason before any lookup.
    public static func isWellFormed(_ token: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        return token.utf8.count <= 128 && parts.count == 3 && parts[0] == "ahjt"
            && parts[1].count == 10 && parts[2].count == 43
            && token.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    private static func randomBase32(count: Int) -> String {
        // The system CSPRNG (getrandom); a generator value holds no state worth sharing.
        var secureGenerator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        return String((0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &secureGenerator)] })
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self)
    }
}
