import Foundation

extension StateTables {
    func createJoinToken(id: String, hash: [UInt8], expiresAt: Date, uses: Int,
                                tags: [String: String], now: Date) throws {
        try Limits.tokenID(id)
        try Limits.hash(hash, "token hash")
        guard Limits.usesRange.contains(uses) else {
            throw IdentityStoreError.invalidArgument("uses must be between 1 and \(Limits.usesRange.upperBound), got \(uses)")
        }
        guard expiresAt > now else {
            throw IdentityStoreError.invalidArgument("token would expire at \(DetailFormat.time(expiresAt)), which is not in the future")
        }
        let tagsJSON = try TagsJSON.encode(tags)
        do {
            try database.transaction { connection in
                try connection.execute("""
                    INSERT INTO join_tokens (id, token_hash, created_at, expires_at, uses_left, tags_json, revoked)
                    VALUES (?, ?, ?, ?, ?, ?, 0)
                    """, [id, hash, UnixMillis.from(now), UnixMillis.from(expiresAt), uses, tagsJSON])
                try Self.appendHistory(connection, kind: .tokenCreated, name: nil, spiffeID: nil,
                                       detail: "token \(id): \(uses) use(s), expires \(DetailFormat.time(expiresAt)), tags \(DetailFormat.tags(tags))",
                                       now: now)
            }
        } catch let error as SQLiteError where error.isConstraintViolation {
            throw IdentityStoreError.tokenExists(id: id)
        }
    }

    func redeemJoinToken(hash: [UInt8], now: Date) throws -> JoinTokenGrant {
        try database.transaction { connection in
            try Self.redeem(connection, hash: hash, now: now)
        }
    }

    func revokeJoinToken(id: String, now: Date) throws {
        try database.transaction { connection in
            let changed = try connection.execute("UPDATE join_tokens SET revoked = 1 WHERE id = ?", [id])
            guard changed == 1 else { throw IdentityStoreError.tokenIDUnknown(id: id) }
            try Self.appendHistory(connection, kind: .tokenRevoked, name: nil, spiffeID: nil,
                                   detail: "token \(id) revoked", now: now)
        }
    }

    func joinToken(id: String) throws -> JoinTokenRecord? {
        try database.withConnection { connection in
            try connection.queryFirst("SELECT \(Self.tokenColumns) FROM join_tokens WHERE id = ?", [id], Self.tokenRecord)
        }
    }

    func listJoinTokens() throws -> [JoinTokenRecord] {
        try database.withConnection { connection in
            try connection.query("SELECT \(Self.tokenColumns) FROM join_tokens ORDER BY created_at DESC, id", [], Self.tokenRecord)
        }
    }

    // MARK: Inside a transaction

    /// The check and the decrement run in the caller's write transaction, so no other
    /// connection can redeem between them; any refusal throws before anything is written.
    static func redeem(_ connection: SQLiteConnection, hash: [UInt8], now: Date) throws -> JoinTokenGrant {
        try Limits.hash(hash, "token hash")
        struct Row { let id: String; let expiresAt: Int64; let usesLeft: Int; let tagsJSON: String; let revoked: Bool }
        let found = try connection.queryFirst(
            "SELECT id, expires_at, uses_left, tags_json, revoked FROM join_tokens WHERE token_hash = ?", [hash]
        ) { row in
            Row(id: try row.string(0), expiresAt: try row.int64(1), usesLeft: try row.int(2),
                tagsJSON: try row.string(3), revoked: try row.int64(4) != 0)
        }
        guard let token = found else { throw IdentityStoreError.tokenUnknown }
        if token.revoked { throw IdentityStoreError.tokenRevoked(id: token.id) }
        if UnixMillis.from(now) >= token.expiresAt {
            throw IdentityStoreError.tokenExpired(id: token.id, expiredAt: UnixMillis.date(token.expiresAt))
        }
        guard token.usesLeft > 0 else { throw IdentityStoreError.tokenUsedUp(id: token.id) }
        let tags = try TagsJSON.decode(token.tagsJSON, column: "join_tokens.tags_json of \(token.id)")
        // The `uses_left > 0` guard repeats the check in SQL, so the decrement is safe even
        // under a backend whose isolation is weaker than SQLite's single writer.
        let changed = try connection.execute(
            "UPDATE join_tokens SET uses_left = uses_left - 1 WHERE id = ? AND uses_left > 0", [token.id])
        guard changed == 1 else { throw IdentityStoreError.tokenUsedUp(id: token.id) }
        return JoinTokenGrant(tokenID: token.id, tags: tags, usesLeft: token.usesLeft - 1,
                              expiresAt: UnixMillis.date(token.expiresAt))
    }

    static let tokenColumns = "id, created_at, expires_at, uses_left, tags_json, revoked"

    static func tokenRecord(_ row: SQLiteRow) throws -> JoinTokenRecord {
        let id = try row.string(0)
        return JoinTokenRecord(id: id,
                               createdAt: UnixMillis.date(try row.int64(1)),
                               expiresAt: UnixMillis.date(try row.int64(2)),
                               usesLeft: try row.int(3),
                               tags: try TagsJSON.decode(try row.string(4), column: "join_tokens.tags_json of \(id)"),
                               revoked: try row.int64(5) != 0)
    }
}
