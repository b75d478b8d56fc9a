/// Why a token was refused or the signing key is unusable. Descriptions never contain the
/// token: they end up in logs and in Problem+JSON details.
public enum UserTokenError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed
    case badSignature
    case expired
    case notYetValid
    case wrongAudience(expected: String)
    case wrongIssuer
    case unknownRole(String)
    case missingSubject
    case missingExpiry
    /// `mint` was asked for something it will not sign (empty subject, non-positive TTL).
    case invalidRequest(String)
    /// `load` found no key file: the access point has never started with this data dir.
    case noSigningKey(directory: String)
    /// The key file exists but cannot be used (unreadable, bad PEM, too open).
    case keyFile(String)

    public var description: String {
        switch self {
        case .malformed: return "token is not a well-formed JWT"
        case .badSignature: return "token signature is not valid for this access point"
        case .expired: return "token has expired"
        case .notYetValid: return "token is issued in the future"
        case .wrongAudience(let expected): return "token is not intended for audience '\(expected)'"
        case .wrongIssuer: return "token was not issued by ah"
        case .unknownRole(let role): return "token has unknown role '\(role)' (expected one of \(Role.namesForHelp))"
        case .missingSubject: return "token has no subject (sub)"
        case .missingExpiry: return "token has no expiry (exp)"
        case .invalidRequest(let reason): return reason
        case .noSigningKey(let directory):
            return "no signing key in \(directory); start `ah serve --data-dir \(directory)` once"
        case .keyFile(let reason): return reason
        }
    }
}
