import Foundation
import JWTKit

/// An external token's claims as loosely typed values: which claim names the subject and the
/// role is configuration, so the payload cannot be a fixed struct. Nested objects and mixed
/// arrays are kept as `.other`; ah reads only top-level strings, numbers and string arrays.
struct ExternalTokenPayload: JWTPayload {
    enum Value: Equatable {
        case string(String)
        case number(Double)
        case strings([String])
        case other
    }

    let claims: [String: Value]

    init(claims: [String: Value]) { self.claims = claims }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ClaimKey.self)
        var claims: [String: Value] = [:]
        for key in container.allKeys {
            if let value = try? container.decode(String.self, forKey: key) {
                claims[key.stringValue] = .string(value)
            } else if let value = try? container.decode(Double.self, forKey: key) {
                claims[key.stringValue] = .number(value)
            } else if let value = try? container.decode([String].self, forKey: key) {
                claims[key.stringValue] = .strings(value)
            } else {
                claims[key.stringValue] = .other
            }
        }
        self.claims = claims
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ClaimKey.self)
        for (name, value) in claims {
            let key = ClaimKey(stringValue: name)
            switch value {
            case .string(let string): try container.encode(string, forKey: key)
            case .number(let number): try container.encode(number, forKey: key)
            case .strings(let strings): try container.encode(strings, forKey: key)
            case .other: try container.encodeNil(forKey: key)
            }
        }
    }

    /// Claims are checked by `ExternalTokenIssuer.verify`, which owns the clock and leeway.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    struct ClaimKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
