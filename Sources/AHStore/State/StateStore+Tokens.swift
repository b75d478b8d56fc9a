import Foundation

extension StateStore: TokenStore {
    public func createJoinToken(id: String, hash: [UInt8], expiresAt: Date, uses: Int,
                                tags: [String: String], now: Date) async throws {
        try await run { try $0.createJoinToken(id: id, hash: hash, expiresAt: expiresAt, uses: uses, tags: tags, now: now) }
    }

    public func redeemJoinToken(hash: [UInt8], now: Date) async throws -> JoinTokenGrant {
        try await run { try $0.redeemJoinToken(hash: hash, now: now) }
    }

    public func revokeJoinToken(id: String, now: Date) async throws {
        try await run { try $0.revokeJoinToken(id: id, now: now) }
    }

    public func joinToken(id: String) async throws -> JoinTokenRecord? {
        try await run { try $0.joinToken(id: id) }
    }

    public func listJoinTokens() async throws -> [JoinTokenRecord] {
        try await run { try $0.listJoinTokens() }
    }
}
