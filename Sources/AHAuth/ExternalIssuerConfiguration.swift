/// How to trust tokens from an external OIDC issuer (Keycloak, Dex, Entra ID...): who issues
/// them, for which audience, and the public keys to check them with.
///
/// The keys come from a local JWKS file rather than the issuer's URL: the access point never
/// fetches anything at verification time, so a slow or hostile network cannot stall or
/// redirect authentication, and key rotation is an explicit operator step (`reload()`).
public struct ExternalIssuerConfiguration: Sendable, Equatable {
    /// Compared exactly with the token's `iss` (no trailing-slash or case folding).
    public var issuer: String
    /// Must appear in the token's `aud` (string or array).
    public var audience: String
    /// Path of a JWKS (RFC 7517) JSON file with the issuer's RS256/ES256 public keys.
    public var jwksFile: String
    /// Claim holding an ah role name (`viewer`, `operator`, `admin`).
    public var roleClaim: String
    /// Role for tokens without `roleClaim`: issuers rarely know ah's roles.
    public var defaultRole: Role
    /// Claim naming the user, matched by ACL rules (e.g. `email`, `preferred_username`).
    public var subjectClaim: String

    public init(issuer: String, audience: String, jwksFile: String, roleClaim: String = "role",
                defaultRole: Role = .operator, subjectClaim: String = "sub") {
        self.issuer = issuer
        self.audience = audience
        self.jwksFile = jwksFile
        self.roleClaim = roleClaim
        self.defaultRole = defaultRole
        self.subjectClaim = subjectClaim
    }

    /// Refuses settings that could never verify a token or would collide with ah's own tokens.
    func validate() throws(UserTokenError) {
        guard !issuer.isEmpty else { throw .issuerConfiguration("external issuer must not be empty") }
        guard issuer != UserTokenAuthority.issuer else {
            throw .issuerConfiguration("external issuer must not be '\(UserTokenAuthority.issuer)': that is the access point's own issuer")
        }
        guard !audience.isEmpty else { throw .issuerConfiguration("external issuer audience must not be empty") }
        guard !jwksFile.isEmpty else { throw .issuerConfiguration("external issuer JWKS file must be named") }
        guard !roleClaim.isEmpty else { throw .issuerConfiguration("external issuer role claim must not be empty") }
        guard !subjectClaim.isEmpty else { throw .issuerConfiguration("external issuer subject claim must not be empty") }
    }
}
