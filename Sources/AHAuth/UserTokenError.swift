import JWTKit

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
    /// The header's `alg` is not one we verify (HS*, none, PS*, EdDSA...) or does not match the
    /// key it names: refusing before any key is touched closes algorithm-confusion attacks.
    case unsupportedAlgorithm(String)
    /// The header's `kid` names no key in the issuer's JWKS (nil: no `kid`, and the set has
    /// several keys). Usually a stale JWKS file after the issuer rotated its keys.
    case unknownSigningKey(kid: String?)
    /// The subject claim is present but unusable (too long, control characters).
    case invalidSubject(String)
    /// An external issuer's configuration or JWKS file cannot be used; names the file.
    case issuerConfiguration(String)

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
        case .unsupportedAlgorithm(let algorithm):
            return "token algorithm '\(Self.printable(algorithm))' is not accepted (RS256 or ES256, matching the signing key)"
        case .unknownSigningKey(let kid?):
            return "token signing key '\(Self.printable(kid))' is not in the issuer's JWKS"
        case .unknownSigningKey(nil):
            return "token names no signing key (kid) and the issuer's JWKS has several"
        case .invalidSubject(let reason): return "token subject is invalid: \(reason)"
        case .issuerConfiguration(let reason): return reason
        }
    }

    /// Header fields come from the token: keep them short and printable in logs.
    static func printable(_ text: String, limit: Int = 64) -> String {
        let cleaned = String(String.UnicodeScalarView(text.unicodeScalars.map {
            $0.properties.generalCategory == .control ? "?" : $0
        }))
        return cleaned.count > limit ? String(cleaned.prefix(limit)) + "…" : cleaned
    }
}

extension UserTokenError {
    /// What a failed JWTKit signature verification means, for both our tokens and an external
    /// issuer's: malformed structure or claims, or a bad signature (which includes one of the
    /// wrong length, which the crypto library refuses to parse).
    init(verificationFailure error: any Error) {
        if let jwt = error as? JWTError, jwt.errorType == .malformedToken {
            self = .malformed
        } else if error is DecodingError {
            self = .malformed
        } else {
            self = .badSignature
        }
    }
}
