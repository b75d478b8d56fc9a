import AHAPI
import AHHTTPClient
import AHTunnel
import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `ah connect NODE`: a byte pipe between stdin/stdout and the executor's sshd, through the
/// access point's HTTP CONNECT. Made for OpenSSH's ProxyCommand:
///
///     ssh -o ProxyCommand='ah connect %h --remote-server URL --token-file PATH' user@NODE
struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect",
        abstract: "Open a tunnel to an executor's sshd on stdin/stdout (an ssh ProxyCommand).",
        discussion: """
            Sends CONNECT NODE:PORT to the access point with the token as \
            Proxy-Authorization: Bearer. Port 22 always means the executor's sshd (its \
            --ssh-dst); other ports only if the executor allow-lists them. Exit 3 when the \
            access point cannot be reached or refuses (the reason is printed), 2 for bad input.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The executor's name (a domain suffix after the first dot is ignored).", valueName: "node"))
    var node: String

    @Option(name: .customLong("remote-server"), help: ArgumentHelp("The access point's HTTP listener, http(s)://HOST:PORT.", valueName: "url"))
    var remoteServer: String

    @Option(help: ArgumentHelp("User JWT (see `ah user token`).", valueName: "jwt"))
    var token: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("Read the JWT from this file instead (keeps it out of `ps`).", valueName: "path"))
    var tokenFile: String?

    @Option(help: "Port on the executor (22: its sshd).")
    var port: Int = 22

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM CA bundle to verify an https:// access point (default: system trust).", valueName: "pem"))
    var caFile: String?

    func validate() throws {
        _ = try ClientOptions.server(remoteServer)
        guard (1...65535).contains(port) else { throw ValidationError("--port '\(port)' must be 1-65535") }
        if case .failure(let error) = ConnectTarget.parse("\(node):\(port)") { throw ValidationError("node: \(error)") }
        guard (token == nil) != (tokenFile == nil) else { throw ValidationError("give exactly one of --token and --token-file") }
    }

    func run() async throws {
        let server = try ClientOptions.server(remoteServer)
        let jwt = try ClientOptions.token(token, file: tokenFile)
        let target = try ConnectTarget.parse("\(node):\(port)").get()
        let group = MultiThreadedEventLoopGroup.singleton
        let loop = group.next()
        var client = ConnectClient(server: server, group: group)
        client.tls = try ClientOptions.tls(for: server, caFile: caFile)
        let tunnel: Channel
        do {
            tunnel = try await client.open(executor: target.executor, port: target.port, token: jwt, on: loop)
        } catch let error as ConnectClientError {
            switch error {
            case .refused(let status, let detail) where status == 400 || status == 404:
                throw CLIError.usage("\(node): \(status) \(detail)")
            default:
                throw CLIError.unreachable("\(node): \(error)")
            }
        }
        let stdio: Channel
        do {
            // The prelude keeps what ssh already wrote until the tunnel is joined (a read that
            // reached the end of an empty pipeline would be dropped).
            stdio = try await NIOPipeBootstrap(group: loop)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TunnelPrelude()) }
                }
                // The real descriptors, not copies: ssh sees the end of the tunnel only when
                // the last write end of its pipe closes.
                .takingOwnershipOfDescriptors(input: STDIN_FILENO, output: STDOUT_FILENO).get()
        } catch {
            tunnel.close(promise: nil)
            throw CLIError.failed("cannot use stdin/stdout: \(error)")
        }
        let summary = try await Tunnel.join(stdio, tunnel).get()
        if !summary.clean, let error = summary.error {
            throw CLIError.unreachable("\(node): tunnel ended abnormally: \(error)")
        }
    }
}
