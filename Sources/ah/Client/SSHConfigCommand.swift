import AHAPI
import AHHTTPClient
import AHIdentity
import AHSPIFFE
import ArgumentParser
import Foundation

/// `ah ssh-config`: an ssh_config block per executor, routed through `ah connect`, with host
/// keys pinned from what each executor reported over its mTLS connection (written to a
/// known-hosts file), so the first ssh to an executor is already verified.
struct SSHConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh-config",
        abstract: "Print an ssh_config block for the executors of an access point and write their known host keys.",
        discussion: """
            Each executor gets `Host NAME`, a ProxyCommand running `ah connect`, \
            `HostKeyAlias ah-NAME` and `StrictHostKeyChecking yes` against --known-hosts, which \
            this command writes from the sshd host keys the executors reported over their \
            authenticated connections. Append the output to ~/.ssh/config (or Include it). \
            Needs a viewer token: --token-file (also used by the ProxyCommand) or --token.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("remote-server"), help: ArgumentHelp("The access point's HTTP listener, http(s)://HOST:PORT.", valueName: "url"))
    var remoteServer: String

    @Option(name: .customLong("token-file"), help: ArgumentHelp("File holding the user JWT; the ProxyCommand reads it too.", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("User JWT (embedded in the ProxyCommand when no --token-file is given).", valueName: "jwt"))
    var token: String?

    @Option(name: .customLong("known-hosts"), help: ArgumentHelp("Where to write the executors' host keys.", valueName: "path"))
    var knownHosts: String = SSHConfigCommand.defaultKnownHosts

    @Option(name: .customLong("ah-path"), help: ArgumentHelp("The ah binary the ProxyCommand runs (default: this one).", valueName: "path"))
    var ahPath: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM CA bundle for an https:// access point.", valueName: "pem"))
    var caFile: String?

    @Flag(help: "Print {\"config\": ..., \"knownHosts\": ..., \"knownHostsFile\": ...} as JSON instead.")
    var json = false

    static var defaultKnownHosts: String { UserPaths.configDirectory + "/known_hosts" }

    func validate() throws {
        _ = try ClientOptions.server(remoteServer)
        guard token != nil || tokenFile != nil else { throw ValidationError("give --token-file (or --token): listing executors needs a viewer token") }
    }

    func run() async throws {
        let server = try ClientOptions.server(remoteServer)
        let jwt = try ClientOptions.token(token, file: tokenFile)
        var client = HTTPAPIClient(server: server)
        client.tls = try ClientOptions.tls(for: server, caFile: caFile)
        let response: HTTPAPIClientResponse
        do {
            response = try await client.get("/api/v1/executors", bearerToken: jwt)
        } catch {
            throw CLIError.unreachable(error.description)
        }
        guard response.status == .ok else { throw ExecutorsListCommand.failure(for: response) }
        let list: ExecutorList
        do { list = try response.decode(ExecutorList.self) } catch {
            throw CLIError.failed("the server's executor list is not in the expected shape: \(error)")
        }
        let binary = ahPath ?? Self.currentBinary()
        var auth = ""
        if let tokenFile {
            auth = "--token-file \(SSHConfigText.quote(URL(fileURLWithPath: tokenFile).standardizedFileURL.path))"
        } else {
            auth = "--token \(jwt)"
            FileHandle.standardError.write(Data("ah ssh-config: warning: the token is embedded in the ProxyCommand; prefer --token-file\n".utf8))
        }
        if let caFile { auth += " --ca-file \(SSHConfigText.quote(URL(fileURLWithPath: caFile).standardizedFileURL.path))" }
        let knownHostsPath = URL(fileURLWithPath: knownHosts).standardizedFileURL.path
        let text = SSHConfigText(server: server.description, binary: binary, auth: auth, knownHostsFile: knownHostsPath)
        let config = text.config(for: list.items)
        let known = text.knownHosts(for: list.items)
        do {
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: knownHostsPath).deletingLastPathComponent(),
                                                    withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try AtomicFileWriter.write(Array(known.utf8), to: URL(fileURLWithPath: knownHostsPath), mode: 0o644)
        } catch {
            throw CLIError.failed("cannot write --known-hosts '\(knownHostsPath)': \(error)")
        }
        if json {
            printJSON(["config": config, "knownHosts": known, "knownHostsFile": knownHostsPath])
        } else {
            print(config, terminator: "")
        }
    }

    /// The absolute path of the running binary, so the ProxyCommand does not depend on PATH.
    static func currentBinary() -> String {
        let path = CommandLine.arguments[0]
        if path.contains("/") { return URL(fileURLWithPath: path).standardizedFileURL.path }
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return resolved }
        return path
    }
}

/// The text `ah ssh-config` prints and writes; pure, so tests can check it.
struct SSHConfigText {
    let server: String
    let binary: String
    let auth: String
    let knownHostsFile: String

    static func alias(_ name: String) -> String { "ah-\(name)" }

    func config(for executors: [ExecutorView]) -> String {
        var out = "# Generated by `ah ssh-config` for \(server).\n"
        out += "# Host keys in \(knownHostsFile) were reported by each executor over its mutually authenticated connection.\n"
        for executor in executors {
            // Names outside the grammar (enrolled before it was enforced) cannot be reached
            // by CONNECT under that name, and could inject ssh_config text: leave them out.
            if let problem = ExecutorName.problem(executor.name) {
                out += "\n# skipped: \(problem.replacingOccurrences(of: "\n", with: " "))\n"
                continue
            }
            out += "\nHost \(executor.name)\n"
            if executor.facts?.sshHostKeys.isEmpty ?? true {
                out += "    # no host keys reported yet: strict checking will refuse until the executor connects\n"
            }
            if executor.facts?.sshEnabled == false {
                out += "    # ssh is disabled on this executor\n"
            }
            out += "    HostName \(executor.name)\n"
            out += "    ProxyCommand \(Self.quote(binary)) connect %h --remote-server \(server) \(auth)\n"
            out += "    HostKeyAlias \(Self.alias(executor.name))\n"
            out += "    UserKnownHostsFile \(Self.quote(knownHostsFile))\n"
            out += "    StrictHostKeyChecking yes\n"
            out += "    ServerAliveInterval 30\n"
        }
        return out
    }

    func knownHosts(for executors: [ExecutorView]) -> String {
        var out = "# Written by `ah ssh-config` from \(server); regenerated on every run.\n"
        for executor in executors where ExecutorName.isValid(executor.name) {
            for key in executor.facts?.sshHostKeys ?? [] {
                out += "\(Self.alias(executor.name)) \(key.algorithm) \(key.publicKey)\n"
            }
        }
        return out
    }

    /// Quotes a path for ssh_config / the ProxyCommand's shell when it needs it.
    static func quote(_ text: String) -> String {
        let plain = text.allSatisfy { $0.isLetter || $0.isNumber || "/._-+:@=%".contains($0) }
        return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
