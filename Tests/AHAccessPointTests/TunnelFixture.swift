import AHTestSupport
import Foundation
import XCTest

/// Everything a tunnel test needs, all real: an sshd per executor on its own loopback port,
/// `ah serve`, `ah agent enroll` processes pointing at those sshds, user tokens, and the
/// OpenSSH client going through `ah connect` as its ProxyCommand.
final class TunnelFixture {
    let directory: TemporaryDirectory
    var serve: ServeProcess!
    var daemons: [String: SSHDaemon] = [:]
    var agents: [String: ChildProcess] = [:]
    let serveArguments: [String]

    init(serveArguments: [String] = []) throws {
        directory = try TemporaryDirectory(prefix: "ah-tunnel")
        self.serveArguments = serveArguments
    }

    func start() async throws {
        serve = try await ServeProcess.start(dataDir: directory.file("data").path, extra: serveArguments)
    }

    func stop() async {
        for agent in agents.values { _ = await agent.terminate(grace: 3) }
        await serve?.stop()
        for daemon in daemons.values { await daemon.stop() }
    }

    var httpURL: String { "http://127.0.0.1:\(serve.httpPort)" }

    /// A new sshd for `name`, and `ah agent enroll --name name --ssh-dst` pointing at it.
    @discardableResult
    func addExecutor(_ name: String, extra: [String] = [], daemon: SSHDaemon? = nil) async throws -> SSHDaemon {
        let sshd: SSHDaemon
        if let daemon { sshd = daemon } else {
            sshd = try await SSHDaemon.start(in: directory.file("sshd-\(name)"))
        }
        daemons[name] = sshd
        let state = directory.file("agent-\(name)").path
        var arguments = ["--remote-server", serve.remote, "--state-dir", state, "--name", name,
                         "--ssh-dst", "127.0.0.1:\(sshd.port)", "--heartbeat-interval", "1s"] + extra
        if !FileManager.default.fileExists(atPath: state + "/cert.pem") {
            arguments += ["--token", try await tokenCreate(serve), "--ca-pin", serve.pin]
        }
        agents[name] = try await startAgent(arguments, awaiting: "connections=1")
        return sshd
    }

    /// `ah user token` for `sub`, written to a file (what ProxyCommands read).
    func userToken(_ sub: String = "alice", role: String = "operator") async throws -> (jwt: String, file: String) {
        let result = try await ah(["user", "token", "--data-dir", serve.dataDir, "--sub", sub, "--role", role])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        let jwt = result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
        let file = directory.file("token-\(sub)-\(role)").path
        try jwt.write(toFile: file, atomically: true, encoding: .utf8)
        return (jwt, file)
    }

    func proxyCommand(tokenFile: String) throws -> String {
        "\(try BuiltProducts.ah().path) connect %h --remote-server \(httpURL) --token-file \(tokenFile)"
    }

    /// ssh/scp options for reaching `node`'s sshd through `ah connect`, logging in with its
    /// client key (host keys not checked here; the strict-checking test uses `ah ssh-config`'s
    /// file).
    func sshOptions(_ node: String, tokenFile: String) throws -> [String] {
        let daemon = daemons[node] ?? daemons.values.first!
        return daemon.clientOptions + ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                       "-o", "ProxyCommand=\(try proxyCommand(tokenFile: tokenFile))"]
    }

    /// Runs `ssh root@NODE command` through `ah connect` to completion.
    func ssh(_ node: String, _ command: String, tokenFile: String, extra: [String] = [], timeout: Double = 60) async throws -> ProcessResult {
        try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh"),
                                    try sshOptions(node, tokenFile: tokenFile) + extra + ["root@\(node)", command], timeout: timeout)
    }

    /// Starts `ssh root@NODE command` through `ah connect` and leaves it running.
    func startSSH(_ node: String, _ command: String, tokenFile: String, captureStdin: Bool = false) throws -> ChildProcess {
        let ssh = ChildProcess(executable: URL(fileURLWithPath: "/usr/bin/ssh"),
                               arguments: try sshOptions(node, tokenFile: tokenFile) + ["root@\(node)", command],
                               captureStdin: captureStdin)
        try ssh.start()
        return ssh
    }

    /// Sends a raw CONNECT and returns the status line's code and the whole head.
    func rawConnect(_ target: String, headers: [String] = []) throws -> (status: Int, text: String) {
        let socket = try RawSocket(port: serve.httpPort)
        try socket.send("CONNECT \(target) HTTP/1.1\r\nHost: \(target)\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
        let (text, _) = socket.read(until: "\r\n\r\n", timeout: 20)
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? -1
        return (status, text)
    }

    func executor(_ name: String) async throws -> [String: Any]? {
        try await executorsJSON(serve).first { $0["name"] as? String == name }
    }

    /// Polls the listing (the registry has no push API) until `name` is in `state`.
    func waitForState(_ name: String, _ state: String, timeout: Double) async throws -> Double {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if try await executor(name)?["state"] as? String == state { return Date().timeIntervalSince(start) }
            try await Task.sleep(nanoseconds: 200_000_000)
        }
        let last = try await executor(name)?["state"]
        XCTFail("\(name) did not become \(state) within \(timeout) s; last: \(String(describing: last))")
        return timeout
    }
}

extension ProcessResult {
    var succeededOrTranscript: String { exit.succeeded ? "" : transcript }
}
