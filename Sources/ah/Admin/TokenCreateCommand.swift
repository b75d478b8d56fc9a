import AHAccessPoint
import AHStore
import ArgumentParser
import Foundation

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Join tokens for enrolling executors.",
        subcommands: [TokenCreateCommand.self]
    )
}

struct TokenCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Mint a join token and print it, once (only its hash is stored).",
        discussion: "Tags given here are bound to every executor enrolled with the token."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The access point's data directory.", valueName: "dir"))
    var dataDir: String

    @Option(help: ArgumentHelp("How long the token can be used (e.g. 15m, 1h, 7d).", valueName: "duration"))
    var ttl: HumanDuration = HumanDuration(seconds: 3600)

    @Option(help: "How many enrollments the token allows.")
    var uses: Int = 1

    @Option(name: .customLong("tag"), help: ArgumentHelp("KEY=VALUE bound to executors enrolled with it; repeatable.", valueName: "key=value"))
    var tags: [String] = []

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func validate() throws {
        guard (1...1_000_000).contains(uses) else { throw ValidationError("--uses '\(uses)' must be between 1 and 1000000") }
        guard ttl.seconds > 0 else { throw ValidationError("--ttl '\(ttl)' must be positive") }
        _ = try parseTags(tags)
    }

    func run() async throws {
        let (_, store) = try await ExistingDataDirectory.openStore(dataDir)
        let minted = JoinTokens.mint()
        let now = Date()
        let expiresAt = now.addingTimeInterval(TimeInterval(ttl.seconds))
        try await store.createJoinToken(id: minted.id, hash: minted.hash, expiresAt: expiresAt, uses: uses,
                                        tags: try parseTags(tags), now: now)
        await store.close()
        if json {
            printJSON(["token": minted.token, "id": minted.id, "expiresAt": ISO8601DateFormatter().string(from: expiresAt), "uses": uses])
        } else {
            print(minted.token)
        }
    }
}

/// `KEY=VALUE` pairs; a malformed one is bad input naming it.
func parseTags(_ pairs: [String]) throws -> [String: String] {
    var tags: [String: String] = [:]
    for pair in pairs {
        guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
            throw ValidationError("--tag '\(pair)' is not KEY=VALUE")
        }
        tags[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
    }
    return tags
}
