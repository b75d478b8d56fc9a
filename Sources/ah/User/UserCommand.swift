import ArgumentParser

/// `ah user ...`: user identities for the REST API and CONNECT tunnels.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Mint user tokens (JWTs) for the access point's REST API and tunnels.",
        subcommands: [UserTokenCommand.self]
    )
}
