import AHTestSupport
import Foundation
import XCTest

/// A real `ah serve` process on loopback with its own data directory.
final class ServeProcess {
    let process: ChildProcess
    let dataDir: String
    let quicPort: Int
    let httpPort: Int
    let pin: String

    static func start(dataDir: String, extra: [String] = [], quicPort: Int = 0) async throws -> ServeProcess {
        let ah = try BuiltProducts.ah()
        let (process, quic) = try await ProcessRunner.startAndAwait(
            ah, ["serve", "--data-dir", dataDir, "--quic-listen", "127.0.0.1:\(quicPort)", "--http-listen", "127.0.0.1:0"] + extra,
            linePrefix: "quic listening on ")
        let http = try await process.waitForLine(withPrefix: "http listening on ", timeout: 10)
        let pin = try await process.waitForLine(withPrefix: "ca pin ", timeout: 10)
        return ServeProcess(process: process, dataDir: dataDir,
                            quicPort: Int(quic.split(separator: ":").last!)!,
                            httpPort: Int(http.split(separator: ":").last!)!,
                            pin: String(pin.dropFirst("ca pin ".count)))
    }

    private init(process: ChildProcess, dataDir: String, quicPort: Int, httpPort: Int, pin: String) {
        self.process = process
        self.dataDir = dataDir
        self.quicPort = quicPort
        self.httpPort = httpPort
        self.pin = pin
    }

    var remote: String { "quic://127.0.0.1:\(quicPort)" }

    func stop() async {
        _ = await process.terminate(grace: 5)
    }
}

/// Runs one `ah` command to completion.
func ah(_ arguments: [String], timeout: Double = 60) async throws -> ProcessResult {
    try await ProcessRunner.run(try BuiltProducts.ah(), arguments, timeout: timeout)
}

/// Starts `ah agent enroll` (long-running) and waits for its first connection.
func startAgent(_ arguments: [String], awaiting needle: String = "connections=1") async throws -> ChildProcess {
    let agent = ChildProcess(executable: try BuiltProducts.ah(), arguments: ["agent", "enroll"] + arguments)
    try agent.start()
    do {
        try await agent.waitForStderr(containing: needle, timeout: 30)
    } catch {
        _ = await agent.terminate(grace: 2)
        throw error
    }
    return agent
}

func tokenCreate(_ serve: ServeProcess, _ extra: [String] = []) async throws -> String {
    let result = try await ah(["token", "create", "--data-dir", serve.dataDir] + extra)
    XCTAssertEqual(result.exit, .exited(0), result.transcript)
    return result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
}

func executorsJSON(_ serve: ServeProcess) async throws -> [[String: Any]] {
    let token = try await ah(["user", "token", "--data-dir", serve.dataDir, "--sub", "test", "--role", "viewer"])
    let jwt = token.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    let list = try await ah(["executors", "list", "--remote-server", "http://127.0.0.1:\(serve.httpPort)", "--token", jwt, "--json"])
    XCTAssertEqual(list.exit, .exited(0), list.transcript)
    let object = try JSONSerialization.jsonObject(with: list.stdout) as? [String: Any]
    return object?["items"] as? [[String: Any]] ?? []
}
