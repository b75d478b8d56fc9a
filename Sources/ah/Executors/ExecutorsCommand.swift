import ArgumentParser

/// `ah executors ...`: the enrolled fleet as the access point sees it.
struct ExecutorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "executors",
        abstract: "List and manage the executors enrolled with an access point.",
        subcommands: [ExecutorsListCommand.self, ExecutorsRevokeCommand.self]
    )
}
