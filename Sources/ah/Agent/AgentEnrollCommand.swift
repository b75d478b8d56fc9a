import AHExecutor
import ArgumentParser
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle

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
            tunnels, open ones get --shutdown-grace, then exit 0; a second SIGTERM (or SIGINT) \
            ends the grace at once. Exit 3 when the access point refuses this identity for good \
            (revoked): retrying cannot help, a new --token can.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("remote-server"), help: ArgumentHelp("The access point, quic://HOST:PORT.", valueName: "url"))
    var remoteServer: String

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where this executor keeps its identity.", valueName: "dir"))
    var stateDir: String

    @Option(help: "This executor's name (one SPIFFE path segment).")
    var name: String

    @Option(help: ArgumentHelp("Join token from `ah token create` (first enrollment; visible in ps: prefer --token-file).", valueName: "token"))
    var token: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("File holding the join token (first enrollment); keeps it off the command line.", valueName: "path"))
    var tokenFile: String?

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

    /// Hidden: tests start sshd after the agent and need the re-read within seconds.
    @Option(name: .customLong("host-key-rescan-interval"), help: ArgumentHelp("How often the sshd's host keys are read again.", valueName: "duration", visibility: .hidden))
    var hostKeyRescanInterval: HumanDuration = HumanDuration(seconds: 60)

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
        if token != nil, tokenFile != nil { throw ValidationError("give one of --token and --token-file, not both") }
        if (token == nil && tokenFile == nil) != (caPin == nil) {
            throw ValidationError("--token (or --token-file) and --ca-pin go together (first enrollment); give both or neither")
        }
        if identity == .files {
            guard token == nil, tokenFile == nil else { throw ValidationError("--token enrolls an identity; --identity files brings one") }
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
        guard hostKeyRescanInterval.seconds >= 1 else {
            throw ValidationError("--host-key-rescan-interval '\(hostKeyRescanInterval)' must be at least 1s")
        }
    }

    /// Runs the agent as the one service of a ServiceGroup: the first SIGTERM/SIGINT is a
    /// graceful shutdown (Goodbye, drain, close), a second one cancels (the grace ends at once).
    /// (ServiceGroup refuses one signal in both roles, hence `ServiceRunner`.)
    private func runUntilSignal(_ agent: ExecutorAgent, logger: Logger) async throws {
        try await ServiceRunner.run([agent], logger: logger)
    }

    /// --token, or the first line of --token-file (a file that cannot be read is a usage error naming it).
    func joinToken() throws -> String? {
        if let token { return token }
        guard let tokenFile else { return nil }
        guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
            throw CLIError.usage("--token-file '\(tokenFile)' cannot be read")
        }
        let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty, !value.contains(where: { $0.isWhitespace }) else {
            throw CLIError.usage("--token-file '\(tokenFile)' does not hold one join token")
        }
        return value
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
            configuration.hostKeyRescanInterval = .seconds(hostKeyRescanInterval.seconds)
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
            if let token = try joinToken(), let caPin {
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
