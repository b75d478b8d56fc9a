@testable import AHFollowerHelper
import AHTestSupport
import Foundation
import Logging
import XCTest

/// A real `ah agent follower-helper` process with its stdin/stdout as a transport.
final class HelperProcess: @unchecked Sendable {
    let process = Process()
    let transport: FileDescriptorTransport
    private let exited = OneShot<Int32>()

    init() throws {
        // A write to a helper that already exited must fail with EPIPE, not end the tests.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = try BuiltProducts.ah()
        process.arguments = ["agent", "follower-helper"]
        var environment = ProcessInfo.processInfo.environment
        environment["AH_LOG_LEVEL"] = "warning"
        process.environment = environment
        let toHelper = Pipe()
        let fromHelper = Pipe()
        process.standardInput = toHelper
        process.standardOutput = fromHelper
        process.standardError = FileHandle.standardError
        process.terminationHandler = { [exited] process in exited.resolve(.success(process.terminationStatus)) }
        try process.run()
        // The transport owns copies; the Pipe objects close theirs.
        transport = FileDescriptorTransport(readFD: dup(fromHelper.fileHandleForReading.fileDescriptor),
                                            writeFD: dup(toHelper.fileHandleForWriting.fileDescriptor))
        try toHelper.fileHandleForWriting.close()
        try toHelper.fileHandleForReading.close()
        try fromHelper.fileHandleForWriting.close()
        try fromHelper.fileHandleForReading.close()
    }

    func connect(ahVersion: String = "test", helloVersion: Int = HelperWire.protocolVersion) async throws -> HelperClient {
        try await HelperClient.connect(inbound: transport.inbound, write: { [transport] in try await transport.write($0) },
                                       closeOutbound: { [transport] in await transport.closeWrite() }, ahVersion: ahVersion,
                                       timeout: .seconds(10), logger: Logger(label: "test"), helloVersion: helloVersion)
    }

    /// The helper's exit status, failing after `timeout`.
    func waitForExit(timeout: Duration = .seconds(15)) async throws -> Int32 {
        try await exited.wait(timeout: timeout, onTimeout: .connectionLost("the helper did not exit within \(timeout)"))
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Everything one job reported, collected.
struct JobRecord {
    var pid: Int32?
    var stdout: [UInt8] = []
    var stderr: [UInt8] = []
    /// Streams in arrival order, one entry per chunk (`o` / `e`) with its text.
    var chunks: [(stream: Character, text: String)] = []
    var exit: JobExit?

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

extension HelperClient {
    /// Runs to the end and collects (the job's stream throws on a lost connection).
    func collect(_ request: RunRequest, onStdout: (String) -> Void = { _ in }) async throws -> JobRecord {
        var record = JobRecord()
        for try await event in run(request) {
            switch event {
            case .started(let pid): record.pid = pid
            case .stdout(let bytes):
                record.stdout += bytes
                record.chunks.append(("o", String(decoding: bytes, as: UTF8.self)))
                onStdout(record.stdoutText)
            case .stderr(let bytes):
                record.stderr += bytes
                record.chunks.append(("e", String(decoding: bytes, as: UTF8.self)))
            case .exited(let exit): record.exit = exit
            }
        }
        return record
    }
}

/// Whether `pid` is gone (or only a zombie waiting for its new parent to reap it).
func processIsGone(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    // The state follows the command name in parentheses: "1234 (sleep) S ...".
    guard let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
    return state == "Z" || state == "X"
}

/// Waits (bounded) until every pid is gone: after a group was killed, init reaps the
/// reparented members asynchronously.
func waitUntilGone(_ pids: [Int32], within timeout: Duration = .seconds(5)) async -> [Int32] {
    let deadline = ContinuousClock.now + timeout
    while true {
        let alive = pids.filter { !processIsGone($0) }
        if alive.isEmpty || ContinuousClock.now >= deadline { return alive }
        try? await Task.sleep(for: .milliseconds(20))
    }
}
