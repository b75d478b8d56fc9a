import AHSPIFFE
import Foundation

extension StateTables {
    @discardableResult
    func enroll(name: String, spiffeID: SPIFFEID, publicKeySHA256: [UInt8], tags: [String: String],
                       certSerial: String, certNotAfter: Date, now: Date) throws -> EnrollmentResult {
        try database.transaction { connection in
            try Self.enroll(connection, name: name, spiffeID: spiffeID, publicKeySHA256: publicKeySHA256, tags: tags,
                            certSerial: certSerial, certNotAfter: certNotAfter, grant: nil, now: now)
        }
    }

    @discardableResult
    func redeemAndEnroll(tokenHash: [UInt8], name: String, spiffeID: SPIFFEID, publicKeySHA256: [UInt8],
                                requestedTags: [String: String], certSerial: String, certNotAfter: Date,
                                now: Date) throws -> EnrollmentResult {
        try database.transaction { connection in
            // A refusal from either step throws out of the transaction, which rolls back the
            // decrement: the token keeps its use.
            let grant = try Self.redeem(connection, hash: tokenHash, now: now)
            let tags = requestedTags.merging(grant.tags) { _, operatorBound in operatorBound }
            return try Self.enroll(connection, name: name, spiffeID: spiffeID, publicKeySHA256: publicKeySHA256,
                                   tags: tags, certSerial: certSerial, certNotAfter: certNotAfter, grant: grant, now: now)
        }
    }

    func recordRenewal(name: String, certSerial: String, certNotAfter: Date,
                              publicKeySHA256: [UInt8]?, now: Date) throws {
        try Limits.serial(certSerial)
        if let publicKeySHA256 { try Limits.hash(publicKeySHA256, "public key hash") }
        try database.transaction { connection in
            let current = try Self.requireExecutor(connection, name)
            if current.isRevoked { throw IdentityStoreError.executorRevoked(name, reason: current.revokeReason) }
            try connection.execute("""
                UPDATE executors
                SET cert_serial = ?, cert_not_after = ?, last_seen = ?, public_key_sha256 = COALESCE(?, public_key_sha256)
                WHERE name = ?
                """, [certSerial, UnixMillis.from(certNotAfter), UnixMillis.from(now), publicKeySHA256, name])
            var detail = "certificate serial \(certSerial) valid until \(DetailFormat.time(certNotAfter))"
            if let publicKeySHA256, publicKeySHA256 != current.publicKeySHA256 {
                detail += "; key rotated to sha256:\(Hex.encode(publicKeySHA256))"
            }
            try Self.appendHistory(connection, kind: .renewed, name: name, spiffeID: current.spiffeID, detail: detail, now: now)
        }
    }

    /// Sync overload of the protocol extension's convenience, for callers of the concrete type.
    func recordRenewal(name: String, certSerial: String, certNotAfter: Date, now: Date) throws {
        try recordRenewal(name: name, certSerial: certSerial, certNotAfter: certNotAfter, publicKeySHA256: nil, now: now)
    }

    @discardableResult
    func revoke(name: String, reason: String, now: Date) throws -> Bool {
        let reason = Limits.truncated(reason.isEmpty ? "no reason given" : reason, 512)
        return try database.transaction { connection in
            let current = try Self.requireExecutor(connection, name)
            // Revoking twice keeps the first time and reason: that is when trust ended.
            if current.isRevoked { return false }
            try connection.execute("UPDATE executors SET revoked_at = ?, revoke_reason = ? WHERE name = ?",
                                   [UnixMillis.from(now), reason, name])
            try Self.appendHistory(connection, kind: .revoked, name: name, spiffeID: current.spiffeID,
                                   detail: "revoked: \(reason); certificate serial \(current.certSerial ?? "none")", now: now)
            return true
        }
    }

    func isRevoked(name: String) throws -> Bool {
        try database.withConnection { connection in
            try connection.queryFirst("SELECT revoked_at IS NOT NULL FROM executors WHERE name = ?", [name]) {
                try $0.int64(0) != 0
            } ?? false
        }
    }

    func executor(named name: String) throws -> ExecutorRecord? {
        try database.withConnection { try Self.executor($0, name) }
    }

    func listExecutors() throws -> [ExecutorRecord] {
        try database.withConnection { connection in
            try connection.query("SELECT \(Self.executorColumns) FROM executors ORDER BY name", [], Self.executorRecord)
        }
    }

    func touch(name: String, lastSeen: Date) throws {
        try database.transaction { connection in
            // MAX keeps last_seen from moving backwards when heartbeats arrive out of order.
            let changed = try connection.execute(
                "UPDATE executors SET last_seen = MAX(COALESCE(last_seen, 0), ?) WHERE name = ?",
                [UnixMillis.from(lastSeen), name])
            guard changed == 1 else { throw IdentityStoreError.unknownExecutor(name) }
        }
    }

    // MARK: Inside a transaction

    static func enroll(_ connection: SQLiteConnection, name: String, spiffeID: SPIFFEID, publicKeySHA256: [UInt8],
                       tags: [String: String], certSerial: String, certNotAfter: Date, grant: JoinTokenGrant?,
                       now: Date) throws -> EnrollmentResult {
        try Limits.executorName(name)
        try Limits.hash(publicKeySHA256, "public key hash")
        try Limits.serial(certSerial)
        let tagsJSON = try TagsJSON.encode(tags)
        let previous = try executor(connection, name)
        let kind: EnrollmentKind
        switch previous {
        case nil:
            kind = .new
        case let previous? where previous.isRevoked:
            kind = .afterRevocation
        case let previous? where previous.publicKeySHA256 == publicKeySHA256:
            kind = .sameKey
        default:
            throw IdentityStoreError.nameTaken(name)
        }
        let nowMillis = UnixMillis.from(now)
        try connection.execute("""
            INSERT INTO executors (name, spiffe_id, public_key_sha256, tags_json, cert_serial, cert_not_after,
                                   enrolled_at, last_seen, revoked_at, revoke_reason)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)
            ON CONFLICT (name) DO UPDATE SET
                spiffe_id = excluded.spiffe_id, public_key_sha256 = excluded.public_key_sha256,
                tags_json = excluded.tags_json, cert_serial = excluded.cert_serial,
                cert_not_after = excluded.cert_not_after, enrolled_at = excluded.enrolled_at,
                last_seen = excluded.last_seen, revoked_at = NULL, revoke_reason = NULL
            """, [name, spiffeID.description, publicKeySHA256, tagsJSON, certSerial,
                  UnixMillis.from(certNotAfter), nowMillis, nowMillis])

        var detail: String
        switch kind {
        case .new: detail = "new executor"
        case .sameKey: detail = "re-enrolled with the same key"
        case .afterRevocation:
            detail = "re-enrolled after revocation (revoked \(previous?.revokedAt.map(DetailFormat.time) ?? "?"): " +
                "\(previous?.revokeReason ?? "no reason given"))"
        }
        detail += "; key sha256:\(Hex.encode(publicKeySHA256)); certificate serial \(certSerial) valid until " +
            "\(DetailFormat.time(certNotAfter)); tags \(DetailFormat.tags(tags))"
        if let grant { detail += "; join token \(grant.tokenID) (\(grant.usesLeft) use(s) left)" }
        try appendHistory(connection, kind: .enrolled, name: name, spiffeID: spiffeID.description, detail: detail, now: now)

        guard let record = try executor(connection, name) else {
            throw IdentityStoreError.corruptRow("executor \(name) missing right after it was written")
        }
        return EnrollmentResult(executor: record, kind: kind, grant: grant)
    }

    static func executor(_ connection: SQLiteConnection, _ name: String) throws -> ExecutorRecord? {
        try connection.queryFirst("SELECT \(executorColumns) FROM executors WHERE name = ?", [name], executorRecord)
    }

    static func requireExecutor(_ connection: SQLiteConnection, _ name: String) throws -> ExecutorRecord {
        guard let record = try executor(connection, name) else { throw IdentityStoreError.unknownExecutor(name) }
        return record
    }

    static let executorColumns = """
        name, spiffe_id, public_key_sha256, tags_json, cert_serial, cert_not_after, \
        enrolled_at, last_seen, revoked_at, revoke_reason
        """

    static func executorRecord(_ row: SQLiteRow) throws -> ExecutorRecord {
        let name = try row.string(0)
        return ExecutorRecord(name: name,
                              spiffeID: try row.string(1),
                              publicKeySHA256: try row.bytes(2),
                              tags: try TagsJSON.decode(try row.string(3), column: "executors.tags_json of \(name)"),
                              certSerial: try row.optionalString(4),
                              certNotAfter: UnixMillis.date(try row.optionalInt64(5)),
                              enrolledAt: UnixMillis.date(try row.int64(6)),
                              lastSeen: UnixMillis.date(try row.optionalInt64(7)),
                              revokedAt: UnixMillis.date(try row.optionalInt64(8)),
                              revokeReason: try row.optionalString(9))
    }
}
