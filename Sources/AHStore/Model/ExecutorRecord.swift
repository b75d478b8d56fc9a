import Foundation

/// An enrolled executor as the registry of record knows it. Live state (connected, degraded,
/// offline) belongs to the in-memory registry; this is what survives restarts.
public struct ExecutorRecord: Sendable, Equatable, Codable {
    public let name: String
    /// `spiffe://TD/ah/agent/NAME`, as a string so that rows stay readable even if the trust
    /// domain's rules change.
    public let spiffeID: String
    /// SHA-256 of the executor's public key (SubjectPublicKeyInfo DER, computed by the caller).
    public let publicKeySHA256: [UInt8]
    public let tags: [String: String]
    public let certSerial: String?
    public let certNotAfter: Date?
    /// Time of the latest enrollment (a re-enrollment resets it).
    public let enrolledAt: Date
    public let lastSeen: Date?
    public let revokedAt: Date?
    public let revokeReason: String?

    public init(name: String, spiffeID: String, publicKeySHA256: [UInt8], tags: [String: String],
                certSerial: String?, certNotAfter: Date?, enrolledAt: Date, lastSeen: Date?,
                revokedAt: Date?, revokeReason: String?) {
        self.name = name
        self.spiffeID = spiffeID
        self.publicKeySHA256 = publicKeySHA256
        self.tags = tags
        self.certSerial = certSerial
        self.certNotAfter = certNotAfter
        self.enrolledAt = enrolledAt
        self.lastSeen = lastSeen
        self.revokedAt = revokedAt
        self.revokeReason = revokeReason
    }

    public var isRevoked: Bool { revokedAt != nil }

    /// `sha256:HEX` of the public key, the form used in history and listings.
    public var publicKeyFingerprint: String { "sha256:" + Hex.encode(publicKeySHA256) }
}

/// How an enrollment related to what was stored before, for the log line and the reply.
public enum EnrollmentKind: String, Sendable, Codable {
    /// The name was not enrolled.
    case new
    /// The name was enrolled to the same key (e.g. the executor lost its certificate).
    case sameKey = "same-key"
    /// The name had been revoked; the revocation is cleared.
    case afterRevocation = "after-revocation"
}

public struct EnrollmentResult: Sendable, Equatable {
    public let executor: ExecutorRecord
    public let kind: EnrollmentKind
    /// The token redeemed for this enrollment, when it went through `redeemAndEnroll`.
    public let grant: JoinTokenGrant?

    public init(executor: ExecutorRecord, kind: EnrollmentKind, grant: JoinTokenGrant?) {
        self.executor = executor
        self.kind = kind
        self.grant = grant
    }
}
