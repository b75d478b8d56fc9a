import AHSSH
import AHTestSupport
import Foundation
import Logging
import NIOCore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A real sshd for one test plus what a client needs to reach it.
final class SSHFixture {
    let directory: TemporaryDirectory
    let daemon: SSHDaemon
    /// The daemon's host key fingerprint as `ssh-keygen -lf` prints it (independent of AHSSH).
    let fingerprint: String
    let user: String
    let logger = Logger(label: "ssh-test")

    private init(directory: TemporaryDirectory, daemon: SSHDaemon, fingerprint: String) {
        self.directory = directory
        self.daemon = daemon
        self.fingerprint = fingerprint
        self.user = String(cString: getpwuid(getuid())!.pointee.pw_name)
    }

    static func start(maxSessions: Int = 50) async throws -> SSHFixture {
        let directory = try TemporaryDirectory(prefix: "ah-ssh")
        let daemon = try await SSHDaemon.start(in: directory.file("sshd"), maxSessions: maxSessions)
        let hostKey = directory.file("sshd").appendingPathComponent("host_key.pub").path
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh-keygen"), ["-l", "-E", "sha256", "-f", hostKey])
        let fields = result.stdoutString.split(separator: " ")
        guard result.exit.succeeded, fields.count >= 2, fields[1].hasPrefix("SHA256:") else {
            await daemon.stop()
            throw SSHDaemonFixtureError(description: "ssh-keygen -l did not print a fingerprint: \(result.transcript)")
        }
        return SSHFixture(directory: directory, daemon: daemon, fingerprint: String(fields[1]))
    }

    /// Stops the listener and whatever sessions (stopped ones included) it left running.
    func stop() async {
        let leftovers = Self.descendants(of: daemon.process.processIdentifier)
        for pid in leftovers { kill(pid, SIGCONT) }
        await daemon.stop()
        for pid in leftovers { kill(pid, SIGKILL) }
    }

    /// A plain TCP connection to the daemon, dialled here (the API takes a connected fd).
    func dial() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SSHDaemonFixtureError(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(daemon.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let reason = String(cString: strerror(errno))
            _ = Glibc.close(fd)
            throw SSHDaemonFixtureError(description: "connect 127.0.0.1:\(daemon.port): \(reason)")
        }
        return fd
    }

    func connect(
        expected: [String]? = nil,
        auth: SSHAuthentication? = nil,
        keepalive: Duration? = nil,
        connectTimeout: Duration = .seconds(20)
    ) async throws -> SSHSession {
        try await SSHSession.connect(
            socket: try dial(),
            expectedHostKeySHA256: expected ?? [fingerprint],
            user: user,
            auth: auth ?? .keyFile(daemon.clientKey),
            keepalive: keepalive,
            connectTimeout: connectTimeout,
            logger: logger
        )
    }

    /// Signals every process below the listening sshd: the per-connection sshd processes
    /// and the commands they run (killing only the listener leaves sessions running).
    @discardableResult
    func killSessionProcesses(signal: Int32) -> Int {
        Self.signalDescendants(of: daemon.process.processIdentifier, signal: signal)
    }

    @discardableResult
    static func signalDescendants(of root: Int32, signal: Int32) -> Int {
        guard root > 0 else { return 0 }
        let victims = descendants(of: root)
        for pid in victims { kill(pid, signal) }
        return victims.count
    }

    static func descendants(of root: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, let parent = Int32(fields[1]) else { continue }
            children[parent, default: []].append(pid)
        }
        var result: [Int32] = []
        var queue = children[root] ?? []
        while let pid = queue.popLast() {
            result.append(pid)
            queue.append(contentsOf: children[pid] ?? [])
        }
        return result
    }
}

struct SSHDaemonFixtureError: Error, CustomStringConvertible {
    let description: String
}

/// Runs `body`, failing with a clear error if it takes longer than `seconds` (a guard
/// against hangs, not a synchronisation). The body runs in an unstructured task: a body
/// stuck on a continuation that never resumes ignores cancellation, and a task group would
/// wait for it forever; this way the test fails and the suite goes on (the stuck task is
/// left behind).
func withDeadline<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
        race.install(continuation)
        let work = Task {
            do {
                race.finish(.success(try await body()))
            } catch {
                race.finish(.failure(error))
            }
        }
        // The deadline itself: a timer, not synchronisation (the body's end is awaited).
        let timer = Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            if race.finish(.failure(SSHDaemonFixtureError(description: "\(what) did not finish within \(seconds) s"))) {
                work.cancel()
            }
        }
        race.onFinish { timer.cancel() }
    }
}

/// The first of a body's result and its deadline resumes the waiter; the other is dropped.
private final class DeadlineRace<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var continuation: CheckedContinuation<T, Error>?
    private var done = false
    private var cleanup: (@Sendable () -> Void)?

    func install(_ continuation: CheckedContinuation<T, Error>) {
        lock.withLock { self.continuation = continuation }
    }

    /// Runs `action` once the race is decided (at once if it already is).
    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let runNow = lock.withLock { () -> Bool in
            if done { return true }
            cleanup = action
            return false
        }
        if runNow { action() }
    }

    /// True when this call decided the race.
    @discardableResult
    func finish(_ result: Result<T, Error>) -> Bool {
        let (waiter, action) = lock.withLock { () -> (CheckedContinuation<T, Error>?, (@Sendable () -> Void)?) in
            guard !done else { return (nil, nil) }
            done = true
            defer { continuation = nil; cleanup = nil }
            return (continuation, cleanup)
        }
        guard let waiter else { return false }
        waiter.resume(with: result)
        action?()
        return true
    }
}

extension SSHSession {
    /// Runs `command` to completion: its stdout, stderr and exit.
    func run(_ command: String, limit: Int = 1 << 20) async throws -> (stdout: String, stderr: String, exit: SSHExit) {
        let channel = try await exec(command)
        let (stdout, stderr) = try await channel.collectOutput(limit: limit)
        let exit = try await channel.waitForExit()
        return (String(buffer: stdout), String(buffer: stderr), exit)
    }
}
