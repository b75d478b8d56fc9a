import AHAPI
import AHAuth
import ArgumentParser
import Foundation

/// `ah user token`: signs a JWT with the access point's key in DATA_DIR. Runs on the access
/// point host (it needs the key file) and does not contact the server.
struct UserTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a signed JWT for a user.",
        discussion: """
            Roles: viewer reads; operator also opens tunnels where the ACL allows; admin may do \
            everything. The token is printed once and not stored; anyone holding it acts as \
            --sub until it expires. Needs the signing key that `ah serve --data-dir DIR` creates.
            """
    )

    /// Longest lifetime we sign: user tokens cannot be revoked individually yet.
    static let maxTTL = HumanDuration(seconds: 366 * 86400)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The access point's data directory.", valueName: "dir"))
    var dataDir: String

    @Option(help: ArgumentHelp("Subject: the user name ACLs refer to.", valueName: "name"))
    var sub: String

    @Option(help: ArgumentHelp("admin, operator or viewer.", valueName: "role"))
    var role: String = Role.operator.rawValue

    @Option(help: ArgumentHelp("Lifetime, e.g. 30s, 15m, 1h, 7d.", valueName: "duration"))
    var ttl: String = "1h"

    @Option(help: ArgumentHelp("Audience the token is for.", valueName: "aud"))
    var aud: String = UserTokenAuthority.defaultAudience

    @Flag(help: "Print {\"token\": ..., \"expiresAt\": ...} instead of the bare token.")
    var json = false

    func validate() throws {
        guard Role(rawValue: role) != nil else {
            throw ValidationError("--role '\(role)' is not one of \(Role.namesForHelp)")
        }
        guard let lifetime = HumanDuration.parse(ttl), lifetime > 0 else {
            throw ValidationError("--ttl '\(ttl)' is not a duration like 30s, 15m, 1h or 7d")
        }
        guard lifetime <= Self.maxTTL.seconds else {
            throw ValidationError("--ttl '\(ttl)' is longer than the maximum \(Self.maxTTL)")
        }
        guard !sub.isEmpty, sub.count <= 256, !sub.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) else {
            throw ValidationError("--sub '\(sub)' must be 1 to 256 characters without spaces or control characters")
        }
        guard !aud.isEmpty, !aud.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.properties.generalCategory == .control }) else {
            throw ValidationError("--aud '\(aud)' must be non-empty without spaces or control characters")
        }
    }

    func run() async throws {
        let authority: UserTokenAuthority
        do {
            authority = try await UserTokenAuthority.load(dataDirectory: dataDir)
        } catch let error as UserTokenError {
            throw CLIError.usage("\(error)")
        }
        let issued = try await authority.issue(subject: sub, role: Role(rawValue: role)!,
                                               ttl: TimeInterval(HumanDuration.parse(ttl)!), audience: aud)
        if json {
            let document = TokenDocument(token: issued.token, expiresAt: ISO8601.string(from: issued.claims.expiresAt))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(document), as: UTF8.self))
        } else {
            print(issued.token)
        }
    }

    private struct TokenDocument: Encodable {
        let token: String
        let expiresAt: String
    }
}
