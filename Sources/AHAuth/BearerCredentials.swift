import Foundation

/// The token in an `Authorization` (REST) or `Proxy-Authorization` (CONNECT) header value.
///
/// `Bearer TOKEN` is the normal form. `Basic base64(user:TOKEN)` is accepted too, as the
/// design settles, because socat and some curl setups can only send Basic credentials; the
/// user name is ignored (the subject comes from the token).
public enum BearerCredentials {
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case missing
        case unsupportedScheme
        case malformed

        public var description: String { description(header: "Authorization") }

        /// The reason, naming the header the token was expected in (`Proxy-Authorization`
        /// for CONNECT).
        public func description(header: String) -> String {
            switch self {
            case .missing: return "no bearer token (send `\(header): Bearer TOKEN`)"
            case .unsupportedScheme: return "unsupported authorization scheme (use Bearer)"
            case .malformed: return "malformed authorization header"
            }
        }
    }

    /// The token from the header value, or why there is none. `nil` means no header.
    public static func token(fromHeader value: String?) -> Result<String, Failure> {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return .failure(.missing) }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return .failure(.malformed) }
        let scheme = parts[0].lowercased()
        let credentials = parts[1].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "bearer":
            return credentials.isEmpty || credentials.contains(" ") ? .failure(.malformed) : .success(credentials)
        case "basic":
            guard let decoded = Data(base64Encoded: credentials).flatMap({ String(data: $0, encoding: .utf8) }),
                  let colon = decoded.firstIndex(of: ":") else { return .failure(.malformed) }
            let password = String(decoded[decoded.index(after: colon)...])
            return password.isEmpty ? .failure(.malformed) : .success(password)
        default:
            return .failure(.unsupportedScheme)
        }
    }
}
