import AHExecutor
import ArgumentParser
import Foundation
import Logging
import NIOPosix

struct AgentEnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll this executor (first time) and keep it connected to the access point.",
        discussion: """
            With --token and --ca-pin: generates a key here (it never leaves this machine), \
            enrolls, and stores key (0600), certificate and CA bundle in --state-dir. Without \
            a token: reuses the stored identity. Then stays connected until stopped, \
            reconnecting after any fault and renewing the certificate before half its lifetime. \
            It says Hello (OS, arch, sshd host keys), sends a heartbeat every \
            --heartbeat-interval, and opens the access point's tunnels: CONNECT NAME:22 to \
            --ssh-dst, other ports only if listed with --allow-tcp. SIGTERM: Goodbye, no new \
            tunnels, open ones get --shutdown-grace, then exit 0.
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

    @Option(name: .customLong("ssh-dst"), help: ArgumentHelp("Where this executor's sshd listens; CONNECT NAME:22 always goes here.", valueName: "host:port"))
    var sshDst: HostPort = HostPort(host: "127.0.0.1", port: 22)

    @Option(help: ArgumentHelp("enabled: tunnels to --ssh-dst are served; disabled: every tunnel is refused.", valueName: "enabled|disabled"))
    var ssh: SSHMode = .enabled

    @Option(name: .customLong("allow-tcp"), help: ArgumentHelp("Another local HOST:PORT tunnels may reach (CONNECT NAME:PORT); repeatable, one per port.", valueName: "host:port"))
    var allowTCP: [HostPort] = []

    @Option(name: .customLong("ssh-host-key"), help: ArgumentHelp("The sshd's public host key file to report (repeatable; default: ask the sshd with ssh-keyscan).", valueName: "pub-file"))
    var sshHostKeys: [String] = []

    @Option(name: .customLong("heartbeat-interval"), help: ArgumentHelp("How often to send a heartbeat (late ones make the access point list this executor as degraded).", valueName: "duration"))
    var heartbeatInterval: HumanDuration = HumanDuration(seconds: 5)

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("A silent path to the access point counts as dead after this long.", valueName: "duration"))
    var idleTimeout: HumanDuration = HumanDuration(seconds: 30)

    @Option(name: .customLong("shutdown-grace"), help: ArgumentHelp("On SIGTERM: how long open tunnels may still run after Goodbye.", valueName: "duration"))
    var shutdownGrace: HumanDuration = HumanDuration(seconds: 30)

    @Option(name: .customLong("max-retries"), help: "Exit after this many consecutive failed connection attempts (default: retry forever).")
    var maxRetries: Int?

    @Flag(name: .customLong("enroll-only"), help: "Enroll and exit instead of staying connected.")
    var enrollOnly = false

    @Option(help: ArgumentHelp("auto: the identity enrolled into --state-dir; files: bring-your-own PEM files (reloaded when they change, not renewed).", valueName: "auto|files"))
    var identity: IdentityMode = .auto

    @Option(name: .customLong("cert-file"), help: ArgumentHelp("With --identity files: PEM certificate (SPIFFE SVID).", valueName: "pem"))
    var certFile: String?

    @Option(name: .customLong("key-file"), help: ArgumentHelp("With --identity files: PEM private key.", valueName: "pem"))
    var keyFile: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("With --identity files: PEM trust bundle.", valueName: "pem"))
    var caFile: String?

    enum IdentityMode: String, ExpressibleByArgument, CaseIterable {
        case auto, files
    }

    enum SSHMode: String, ExpressibleByArgument, CaseIterable {
        case enabled, disabled
    }

    func validate() throws {
        _ = try remote()
        if (token == nil) != (caPin == nil) {
            throw ValidationError("--token and --ca-pin go together (first enrollment); give both or neither")
        }
        if identity == .files {
            guard token == nil else { throw ValidationError("--token enrolls an identity; --identity files brings one") }
            for (flag, path) in [("--cert-file", certFile), ("--key-file", keyFile), ("--ca-file", caFile)] {
                guard let path else { throw ValidationError("--identity files needs \(flag)") }
                guard FileManager.default.isReadableFile(atPath: path) else { throw ValidationError("\(flag) '\(path)' is not a readable file") }
            }
        }
        _ = try parseTags(tags)
        guard sshDst.port > 0 else { throw ValidationError("--ssh-dst '\(sshDst)' needs a port from 1 to 65535") }
        var ports: Set<Int> = [22]
        for entry in allowTCP {
            guard entry.port > 0 else { throw ValidationError("--allow-tcp '\(entry)' needs a port from 1 to 65535") }
            guard ports.insert(entry.port).inserted else {
                throw ValidationError("--allow-tcp '\(entry)': port \(entry.port) is already taken (22 is always the sshd; one destination per port)")
            }
        }
        for file in sshHostKeys where !FileManager.default.isReadableFile(atPath: file) {
            throw ValidationError("--ssh-host-key '\(file)' is not a readable file")
        }
        guard heartbeatInterval.seconds >= 1 else { throw ValidationError("--heartbeat-interval '\(heartbeatInterval)' must be at least 1s") }
        guard idleTimeout.seconds >= 3 else { throw ValidationError("--idle-timeout '\(idleTimeout)' must be at least 3s") }
    }

    /// Runs the agent until SIGTERM/SIGINT (which sends the access point a close).
    private func runUntilSignal(_ agent: ExecutorAgent, logger: Logger) async throws {
        let run = Task { try await agent.run() }
        let stop = Task {
            let signal = await SignalWaiter.waitForTermination()
            logger.info("signal \(signal): disconnecting")
            run.cancel()
        }
        defer { stop.cancel() }
        try await run.value
    }

    func remote() throws -> HostPort { try HostPort.quicRemote(remoteServer) }

    func run() async throws {
        let logger = CLILogging.logger("ah.agent")
        let remote = try remote()
        let group = MultiThreadedEventLoopGroup.singleton
        do {
            let state = try ExecutorStateDirectory(path: stateDir)
            var configuration = ExecutorAgent.Configuration(host: remote.host, port: remote.port)
            configuration.maxRetries = maxRetries
            configuration.tunnelPolicy = TunnelPolicy(
                sshEnabled: ssh == .enabled,
                sshDestination: .init(host: sshDst.host, port: sshDst.port),
                allowed: allowTCP.map { .init(host: $0.host, port: $0.port) })
            configuration.sshHostKeyFiles = sshHostKeys
            configuration.heartbeatInterval = .seconds(Int64(heartbeatInterval.seconds))
            configuration.idleTimeout = .seconds(Int64(idleTimeout.seconds))
            // Keep-alives well inside the idle timeout, so only a dead path goes silent.
            configuration.keepAlive = .milliseconds(Int64(idleTimeout.seconds) * 1000 / 3)
            configuration.shutdownGrace = TimeInterval(shutdownGrace.seconds)
            configuration.tags = try parseTags(tags)
            if identity == .files, let certFile, let keyFile, let caFile {
                configuration.identity = .files(certificate: certFile, key: keyFile, ca: caFile)
                let agent = ExecutorAgent(state: state, configuration: configuration, group: group, logger: logger)
                let (metadata, _) = try agent.currentIdentity()
                guard metadata.name == name else {
                    throw ExecutorError.usage("--name '\(name)' does not match the certificate's SPIFFE ID \(metadata.spiffeID)")
                }
                if enrollOnly { return }
                try await runUntilSignal(agent, logger: logger)
                return
            }
            if let token, let caPin {
                _ = try await Enroller.enroll(host: remote.host, port: remote.port, token: token, caPin: caPin, name: name,
                                              tags: try parseTags(tags), state: state, group: group, logger: logger)
            } else if !state.hasIdentity {
                throw ExecutorError.usage("no identity in \(stateDir): enroll first with --token and --ca-pin")
            } else if try state.metadata().name != name {
                throw ExecutorError.usage("--name '\(name)' does not match the identity in \(stateDir) ('\(try state.metadata().name)')")
            }
            if enrollOnly { return }
            let agent = ExecutorAgent(state: state, configuration: configuration, group: group, logger: logger)
            try await runUntilSignal(agent, logger: logger)
        } catch let error as ExecutorError {
            switch error {
            case .usage(let message): throw CLIError.usage(message)
            case .refused(let message), .identityExpired(let message): throw CLIError.unreachable(message)
            }
        }
    }
}
