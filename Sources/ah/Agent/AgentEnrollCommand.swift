import AHExecutor
import ArgumentParser
import Foundation
import NIOPosix

struct AgentEnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll this executor (first time) and keep it connected to the access point.",
        discussion: """
            With --token and --ca-pin: generates a key here (it never leaves this machine), \
            enrolls, and stores key (0600), certificate and CA bundle in --state-dir. Without \
            a token: reuses the stored identity. Then stays connected until stopped, \
            reconnecting after any fault and renewing the certificate before half its lifetime.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("remote-server"), help: ArgumentHelp("The access point, quic://HOST:PORT.", valueName: "url"))
    var remoteServer: String

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where this executor keeps its identity.", valueName: "dir"))
    var stateDir: String

    @Option(help: "This executor's name (one SPIFFE path segment).")
    var name: String

    @Option(help: ArgumentHelp("Join token from `ah token create` (first enrollment).", valueName: "token"))
    var token: String?

    @Option(name: .customLong("ca-pin"), help: ArgumentHelp("sha256:HEX from `ah ca pin` (first enrollment).", valueName: "pin"))
    var caPin: String?

    @Option(name: .customLong("tag"), help: ArgumentHelp("KEY=VALUE to ask for; repeatable (the token's tags win).", valueName: "key=value"))
    var tags: [String] = []

    @Option(name: .customLong("max-retries"), help: "Exit after this many consecutive failed connection attempts (default: retry forever).")
    var maxRetries: Int?

    @Flag(name: .customLong("enroll-only"), help: "Enroll and exit instead of staying connected.")
    var enrollOnly = false

    func validate() throws {
        _ = try remote()
        if (token == nil) != (caPin == nil) {
            throw ValidationError("--token and --ca-pin go together (first enrollment); give both or neither")
        }
        _ = try parseTags(tags)
    }

    /// `quic://HOST:PORT` (the scheme is optional).
    func remote() throws -> HostPort {
        var text = remoteServer
        if text.hasPrefix("quic://") { text.removeFirst(7) }
        guard let parsed = try? HostPort.parse(text), parsed.port > 0 else {
            throw ValidationError("--remote-server '\(remoteServer)' is not quic://HOST:PORT")
        }
        return parsed
    }

    func run() async throws {
        let logger = CLILogging.logger("ah.agent")
        let remote = try remote()
        let group = MultiThreadedEventLoopGroup.singleton
        do {
            let state = try ExecutorStateDirectory(path: stateDir)
            if let token, let caPin {
                _ = try await Enroller.enroll(host: remote.host, port: remote.port, token: token, caPin: caPin, name: name,
                                              tags: try parseTags(tags), state: state, group: group, logger: logger)
            } else if !state.hasIdentity {
                throw ExecutorError.usage("no identity in \(stateDir): enroll first with --token and --ca-pin")
            } else if try state.metadata().name != name {
                throw ExecutorError.usage("--name '\(name)' does not match the identity in \(stateDir) ('\(try state.metadata().name)')")
            }
            if enrollOnly { return }
            var configuration = ExecutorAgent.Configuration(host: remote.host, port: remote.port)
            configuration.maxRetries = maxRetries
            let agent = ExecutorAgent(state: state, configuration: configuration, group: group, logger: logger)
            let run = Task { try await agent.run() }
            let stop = Task {
                let signal = await SignalWaiter.waitForTermination()
                logger.info("signal \(signal): disconnecting")
                run.cancel()
            }
            defer { stop.cancel() }
            try await run.value
        } catch let error as ExecutorError {
            switch error {
            case .usage(let message): throw CLIError.usage(message)
            case .refused(let message), .identityExpired(let message): throw CLIError.unreachable(message)
            case .io(let message): throw CLIError.failed(message)
            }
        }
    }
}
