import ArgumentParser

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Executor side (enroll, stay connected) and leader side (drive the followers).",
        subcommands: [AgentEnrollCommand.self, FollowersCommand.self, RunEverywhereCommand.self, FollowerHelperCommand.self]
    )
}
