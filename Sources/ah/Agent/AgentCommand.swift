import ArgumentParser

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Executor side: enroll and stay connected to an access point.",
        subcommands: [AgentEnrollCommand.self]
    )
}
