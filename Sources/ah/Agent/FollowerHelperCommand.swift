import AHExecutor
import AHFollowerHelper
import ArgumentParser
import Foundation

/// `ah agent follower-helper`: the follower end of the leader's long-lived helper. The
/// leader starts it once per SSH session on an exec channel and speaks the follower helper
/// protocol (docs/protocol.md) on its stdin/stdout, so stdout carries frames only: logs go
/// to stderr. It runs until its stdin closes, then ends every job it started.
struct FollowerHelperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "follower-helper",
        abstract: "Follower side of the leader's SSH session: run commands for it over stdin/stdout (started by the leader).",
        discussion: """
            Speaks the framed follower helper protocol on stdin/stdout; not for interactive use. \
            Each command runs in its own process group; when stdin closes, every running \
            command's process group is terminated and the helper exits.
            """
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let logger = CLILogging.logger("ah.follower-helper")
        let server = HelperServer(ahVersion: SystemFacts.agentVersion, logger: logger)
        switch await server.run() {
        case .inputClosed:
            return
        case .outputFailed(let reason), .refused(let reason):
            throw CLIError.failed(reason)
        }
    }
}
