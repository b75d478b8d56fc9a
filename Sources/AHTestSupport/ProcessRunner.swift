// Spawning real processes from tests: `ah` subcommands, the aioquic peer, ngtcp2's examples.
//
// Output is read by one blocking reader thread per pipe and handed to waiters as it
// arrives (no sleep-polling); timeouts are single timers. Every wait has a deadline, so a
// hung child fails a test instead of hanging it, and a child that is still running when
// its `ChildProcess` goes away is killed.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How a child process ended.
public struct ProcessExit: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case exited
        case signalled
    }

    public let reason: Reason
    /// The exit status, or the signal number when `reason == .signalled`.
    public let code: Int32

    public init(reason: Reason, code: Int32) {
        self.reason = reason
        self.code = code
    }

    public static func exited(_ code: Int32) -> ProcessExit { ProcessExit(reason: .exited, code: code) }
    public static func signalled(_ signal: Int32) -> ProcessExit { ProcessExit(reason: .signalled, code: signal) }

    /// Exit status 0.
    public var succeeded: Bool { reason == .exited && code == 0 }

    /// The exit status, or nil if a signal ended the process.
    public var exitCode: Int32? { reason == .exited ? code : nil }

    public var description: String {
        switch reason {
        case .exited: return "exit status \(code)"
        case .signalled: return "killed by signal \(code)"
        }
    }
}

public enum ProcessError: Error, CustomStringConvertible {
    case executableNotFound(String)
    case launchFailed(command: String, reason: String)
    case timedOut(what: String, seconds: Double, transcript: String)
    case endedBeforeLine(prefix: String, exit: ProcessExit?, transcript: String)
    case endedBeforeText(needle: String, exit: ProcessExit?, transcript: String)

    public var description: String {
        switch self {
        case .executableNotFound(let what):
            return "executable not found: \(what)"
        case .launchFailed(let command, let reason):
            return "could not start \(command): \(reason)"
        case .timedOut(let what, let seconds, let transcript):
            return "timed out after \(seconds)s waiting for \(what)\n\(transcript)"
        case .endedBeforeLine(let prefix, let exit, let transcript):
            let how = exit.map { "ended (\($0))" } ?? "closed its stdout"
            return "process \(how) before printing a line starting with \"\(prefix)\"\n\(transcript)"
        case .endedBeforeText(let needle, let exit, let transcript):
            let how = exit.map { "ended (\($0))" } ?? "closed its stderr"
            return "process \(how) before its stderr contained \"\(needle)\"\n\(transcript)"
        }
    }
}

/// The outcome of a process that ran to completion.
public struct ProcessResult: Sendable {
    public let command: String
    public let exit: ProcessExit
    public let stdout: Data
    public let stderr: Data

    public var stdoutString: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrString: String { String(decoding: stderr, as: UTF8.self) }

    /// stdout/stderr with the command, for failure messages.
    public var transcript: String {
        ChildProcess.formatTranscript(command: command, exit: exit, stdout: stdout, stderr: stderr)
    }
}

/// Convenience entry points.
public enum ProcessRunner {
    /// Runs `executable` to completion (killing it after `timeout` seconds) and collects
    /// its output. Throws `ProcessError.timedOut` (with the transcript) on timeout.
    public static func run(
        _ executable: URL,
        _ arguments: [String],
        environment: [String: String] = [:],
        currentDirectory: URL? = nil,
        stdin: Data? = nil,
        timeout: Double = 60
    ) async throws -> ProcessResult {
        try await RunToCompletion.run(executable, arguments, environment: environment,
                                      currentDirectory: currentDirectory, stdin: stdin, timeout: timeout)
    }

    /// Starts `executable`, waits for a stdout line starting with `prefix` and returns the
    /// running process with the rest of that line (e.g. the address after "listening on ").
    /// The process is terminated if the line does not come.
    public static func startAndAwait(
        _ executable: URL,
        _ arguments: [String],
        linePrefix prefix: String,
        environment: [String: String] = [:],
        currentDirectory: URL? = nil,
        timeout: Double = 30
    ) async throws -> (process: ChildProcess, rest: String) {
        let child = ChildProcess(executable: executable, arguments: arguments,
                                 environment: environment, currentDirectory: currentDirectory)
        try child.start()
        do {
            let line = try await child.waitForLine(withPrefix: prefix, timeout: timeout)
            return (child, String(line.dropFirst(prefix.count)))
        } catch {
            _ = await child.terminate(grace: 2)
            throw error
        }
    }
}

/// A spawned process whose stdout and stderr are captured through pipes.
///
/// Spawned with `posix_spawn` (not Foundation's `Process`: on Linux that notices an exit
/// only once every descendant has closed a descriptor it inherited, so a grandchild
/// delays it indefinitely). The child gets default signal dispositions and an empty
/// signal mask, and stays in the test's process group, so a Ctrl-C on `swift test`
/// reaches it too. One thread blocks in `waitpid`, one per pipe in `read`.
///
/// Why not swift-subprocess here (run-to-completion, `ProcessRunner.run`, is on it): a
/// Subprocess `Execution` lives only inside the body of `run`, while a `ChildProcess` is an
/// object whose process outlives any one scope (a server started in one place, signalled,
/// awaited and killed in others, killed by `deinit` when a test fails half-way). Bridging
/// would need a detached task owning that scope, so `start()` could no longer report a
/// launch failure or know the pid when it returns, and every caller would change.
public final class ChildProcess: @unchecked Sendable {
    // Immutable after init.
    public let executable: URL
    public let arguments: [String]
    private let environment: [String: String]
    private let currentDirectory: URL?
    private let wantsStdin: Bool

    // Guarded by `lock`.
    private let lock = NSLock()
    private var pid: pid_t = 0
    private var stdinHandle: FileHandle?
    private var outData = Data()
    private var errData = Data()
    private var partialLine = Data()
    private var lines: [String] = []
    private var outEOF = false
    private var errEOF = false
    private var exitStatus: ProcessExit?
    private var pipesAbandoned = false
    private var nextWaiterID = 0
    private var lineWaiters: [Int: (prefix: String, continuation: CheckedContinuation<String, Error>)] = [:]
    private var exitWaiters: [Int: CheckedContinuation<ProcessExit, Error>] = [:]
    private var stderrWaiters: [Int: (needle: String, continuation: CheckedContinuation<Void, Error>)] = [:]

    /// - Parameters:
    ///   - environment: added to (and overriding) this process's environment.
    ///   - captureStdin: give the child a pipe on stdin (otherwise /dev/null).
    public init(
        executable: URL,
        arguments: [String],
        environment: [String: String] = [:],
        currentDirectory: URL? = nil,
        captureStdin: Bool = false
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.currentDirectory = currentDirectory
        self.wantsStdin = captureStdin
    }

    deinit {
        // Never leave a child behind, even when a test fails half-way.
        if pid > 0, exitStatus == nil {
            kill(pid, SIGKILL)
        }
    }

    /// The command line, shell-quoted, for messages.
    public var commandLine: String { Self.commandLine(executable: executable, arguments: arguments) }

    static func commandLine(executable: URL, arguments: [String]) -> String {
        ([executable.path] + arguments).map(Self.shellQuote).joined(separator: " ")
    }

    public var processIdentifier: Int32 { lock.withLock { pid } }

    public func start() throws {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw ProcessError.executableNotFound(executable.path)
        }
        guard lock.withLock({ pid == 0 }) else {
            throw ProcessError.launchFailed(command: commandLine, reason: "already started")
        }
        if wantsStdin {
            // Writing to a child that has exited must be an error, not a SIGPIPE that
            // kills the whole test process.
            Self.ignoreSIGPIPE
        }
        // All parent-side descriptors are close-on-exec, so concurrently spawned children
        // never inherit each other's pipes; dup2 in the child clears the flag on 0, 1, 2.
        let stdoutPipe = try Self.makePipe()
        let stderrPipe = try Self.makePipe()
        let stdinPipe = wantsStdin ? try Self.makePipe() : nil
        let devNull = wantsStdin ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer {
            // The child's ends (and /dev/null) are not needed in the parent after spawning.
            close(stdoutPipe.write)
            close(stderrPipe.write)
            if let stdinPipe { close(stdinPipe.read) }
            if devNull >= 0 { close(devNull) }
        }

        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t?
        var attributes: posix_spawnattr_t?
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe?.read ?? devNull, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, 2)
        // Only 0, 1 and 2 reach the child. Descriptors the test process inherited without
        // close-on-exec (the build lock `flock` holds open for `swift test`, for one) would
        // otherwise live on in every server a test starts, and in any it leaves behind.
        if let addclosefrom = Self.addclosefrom {
            _ = addclosefrom(&actions, 3)
        }
        if let currentDirectory {
            guard let addchdir = Self.addchdir else {
                throw ProcessError.launchFailed(command: commandLine,
                                                reason: "posix_spawn_file_actions_addchdir_np is unavailable")
            }
            _ = addchdir(&actions, currentDirectory.path)
        }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let mergedEnvironment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let argv = ([executable.path] + arguments).map { strdup($0) } + [nil]
        let envp = mergedEnvironment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable.path, &actions, &attributes, argv, envp)
        guard status == 0 else {
            close(stdoutPipe.read)
            close(stderrPipe.read)
            if let stdinPipe { close(stdinPipe.write) }
            throw ProcessError.launchFailed(command: commandLine, reason: String(cString: strerror(status)))
        }
        lock.withLock {
            pid = child
            if let stdinPipe {
                stdinHandle = FileHandle(fileDescriptor: stdinPipe.write, closeOnDealloc: true)
            }
        }
        startReader(stdoutPipe.read, isStdout: true)
        startReader(stderrPipe.read, isStdout: false)
        startReaper(child)
    }

    static let ignoreSIGPIPE: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        // (pipe2 is not imported into Swift's Glibc module; a spawn from another thread
        // between these calls could inherit the pair, which costs it only a late EOF.)
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw ProcessError.launchFailed(command: "pipe", reason: String(cString: strerror(errno)))
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return (fds[0], fds[1])
    }

    #if canImport(Darwin)
    private typealias AddChdir = @convention(c) (
        UnsafeMutablePointer<posix_spawn_file_actions_t?>, UnsafePointer<CChar>) -> Int32
    #else
    private typealias AddChdir = @convention(c) (
        UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    #endif

    #if canImport(Darwin)
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t?>, Int32) -> Int32
    #else
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    #endif

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc ≥ 2.34), looked up at run time like
    /// `addchdir`; nil where the C library lacks it (then descriptors are inherited as before).
    private static let addclosefrom: AddCloseFrom? = {
        #if canImport(Darwin)
        return nil
        #else
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
        #endif
    }()

    /// `posix_spawn_file_actions_addchdir_np` (glibc ≥ 2.29, macOS ≥ 10.15), looked up at
    /// run time because the Glibc module does not import GNU extensions.
    private static let addchdir: AddChdir? = {
        #if canImport(Darwin)
        let handle = UnsafeMutableRawPointer(bitPattern: -2)  // RTLD_DEFAULT
        #else
        let handle: UnsafeMutableRawPointer? = nil  // RTLD_DEFAULT
        #endif
        guard let symbol = dlsym(handle, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    // MARK: Output

    public var stdoutData: Data { lock.withLock { outData } }
    public var stderrData: Data { lock.withLock { errData } }
    public var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    public var stderr: String { String(decoding: stderrData, as: UTF8.self) }
    /// Complete stdout lines so far (without the newline).
    public var stdoutLines: [String] { lock.withLock { lines } }
    /// The exit status if the process has ended.
    public var exitStatusIfEnded: ProcessExit? { lock.withLock { exitStatus } }
    public var isRunning: Bool { lock.withLock { pid > 0 && exitStatus == nil } }

    /// Command, status and both streams (tail-truncated), for failure messages.
    public var transcript: String {
        let (exit, out, err) = lock.withLock { (exitStatus, outData, errData) }
        return Self.formatTranscript(command: commandLine, exit: exit, stdout: out, stderr: err)
    }

    static func formatTranscript(command: String, exit: ProcessExit?, stdout: Data, stderr: Data) -> String {
        func tail(_ data: Data) -> String {
            let limit = 8192
            let text = String(decoding: data.suffix(limit), as: UTF8.self)
            return data.count > limit ? "[… \(data.count - limit) bytes cut …]" + text : text
        }
        return """
            $ \(command)
            [\(exit.map { $0.description } ?? "still running")]
            --- stdout ---
            \(tail(stdout))
            --- stderr ---
            \(tail(stderr))
            """
    }

    // MARK: Stdin

    /// Writes to the child's stdin (only with `captureStdin: true`).
    public func writeToStdin(_ data: Data) {
        let handle = lock.withLock { stdinHandle }
        try? handle?.write(contentsOf: data)
    }

    public func closeStdin() {
        let handle = lock.withLock { () -> FileHandle? in
            defer { stdinHandle = nil }
            return stdinHandle
        }
        try? handle?.close()
    }

    // MARK: Waiting

    /// Waits until stdout has a complete line starting with `prefix` (lines printed before
    /// the call count too) and returns that line. Fails if the process ends or closes its
    /// stdout first, or after `timeout` seconds.
    public func waitForLine(withPrefix prefix: String, timeout: Double) async throws -> String {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, Error>) in
            let id: Int? = lock.withLock {
                if let line = lines.first(where: { $0.hasPrefix(prefix) }) {
                    continuation.resume(returning: line)
                    return nil
                }
                if outEOF || exitStatus != nil && pipesAbandoned {
                    continuation.resume(throwing: ProcessError.endedBeforeLine(
                        prefix: prefix, exit: exitStatus, transcript: transcriptLocked()))
                    return nil
                }
                nextWaiterID += 1
                lineWaiters[nextWaiterID] = (prefix, continuation)
                return nextWaiterID
            }
            guard let id else { return }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
                guard let self else { return }
                let waiter = self.lock.withLock { self.lineWaiters.removeValue(forKey: id) }
                waiter?.continuation.resume(throwing: ProcessError.timedOut(
                    what: "a stdout line starting with \"\(prefix)\"", seconds: timeout,
                    transcript: self.transcript))
            }
        }
    }

    /// Waits until stderr (all of it so far, not line by line) contains `needle`. Fails if
    /// stderr is closed first, or after `timeout` seconds.
    public func waitForStderr(containing needle: String, timeout: Double) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let id: Int? = lock.withLock {
                if String(decoding: errData, as: UTF8.self).contains(needle) {
                    continuation.resume()
                    return nil
                }
                if errEOF || pipesAbandoned {
                    continuation.resume(throwing: ProcessError.endedBeforeText(
                        needle: needle, exit: exitStatus, transcript: transcriptLocked()))
                    return nil
                }
                nextWaiterID += 1
                stderrWaiters[nextWaiterID] = (needle, continuation)
                return nextWaiterID
            }
            guard let id else { return }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
                guard let self else { return }
                let waiter = self.lock.withLock { self.stderrWaiters.removeValue(forKey: id) }
                waiter?.continuation.resume(throwing: ProcessError.timedOut(
                    what: "stderr to contain \"\(needle)\"", seconds: timeout, transcript: self.transcript))
            }
        }
    }

    /// Waits until the process has exited and its output has been read to the end.
    public func waitForExit(timeout: Double) async throws -> ProcessExit {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<ProcessExit, Error>) in
            let id: Int? = lock.withLock {
                if let exit = completedExitLocked() {
                    continuation.resume(returning: exit)
                    return nil
                }
                nextWaiterID += 1
                exitWaiters[nextWaiterID] = continuation
                return nextWaiterID
            }
            guard let id else { return }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [weak self] in
                guard let self else { return }
                let waiter = self.lock.withLock { self.exitWaiters.removeValue(forKey: id) }
                waiter?.resume(throwing: ProcessError.timedOut(
                    what: "the process to exit", seconds: timeout, transcript: self.transcript))
            }
        }
    }

    /// Sends `signal` (e.g. SIGINT) if the process is still running.
    public func send(signal: Int32) {
        lock.withLock {
            // Only while not yet reaped: after that the pid may belong to someone else.
            if pid > 0, exitStatus == nil {
                kill(pid, signal)
            }
        }
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace` seconds; returns how it
    /// ended (nil only if even SIGKILL did not end it within 10 s).
    @discardableResult
    public func terminate(grace: Double = 5) async -> ProcessExit? {
        guard lock.withLock({ pid > 0 }) else { return nil }
        send(signal: SIGTERM)
        if let exit = try? await waitForExit(timeout: grace) {
            return exit
        }
        send(signal: SIGKILL)
        return try? await waitForExit(timeout: 10)
    }

    // MARK: Internals

    private func startReader(_ fd: Int32, isStdout: Bool) {
        // `weak`: the reader must not keep this object (and so, through deinit's SIGKILL,
        // the child) alive. It owns `fd` and closes it at EOF.
        let thread = Thread { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                guard let self else { continue }  // nobody listens any more: just drain
                self.received(Data(buffer[0..<count]), isStdout: isStdout)
            }
            close(fd)
            self?.received(nil, isStdout: isStdout)
        }
        thread.name = "ChildProcess \(isStdout ? "stdout" : "stderr") reader"
        thread.start()
    }

    private func startReaper(_ child: pid_t) {
        let thread = Thread { [weak self] in
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 {
                if errno != EINTR {
                    self?.processExited(.exited(-1))
                    return
                }
            }
            // The W* macros are not imported into Swift.
            let exit: ProcessExit = (status & 0x7f) == 0
                ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
            self?.processExited(exit)
        }
        thread.name = "ChildProcess waitpid \(child)"
        thread.start()
    }

    private func received(_ data: Data?, isStdout: Bool) {
        var resumeLines: [(CheckedContinuation<String, Error>, Result<String, Error>)] = []
        var resumeExit: [CheckedContinuation<ProcessExit, Error>] = []
        var resumeText: [(CheckedContinuation<Void, Error>, Result<Void, Error>)] = []
        var completed: ProcessExit?
        lock.withLock {
            if isStdout {
                if let data {
                    outData.append(data)
                    partialLine.append(data)
                    while let newline = partialLine.firstIndex(of: UInt8(ascii: "\n")) {
                        var lineData = partialLine[partialLine.startIndex..<newline]
                        if lineData.last == UInt8(ascii: "\r") { lineData = lineData.dropLast() }
                        let line = String(decoding: lineData, as: UTF8.self)
                        partialLine = Data(partialLine[partialLine.index(after: newline)...])
                        lines.append(line)
                        for (id, waiter) in lineWaiters where line.hasPrefix(waiter.prefix) {
                            lineWaiters.removeValue(forKey: id)
                            resumeLines.append((waiter.continuation, .success(line)))
                        }
                    }
                } else {
                    outEOF = true
                    if !partialLine.isEmpty {
                        let line = String(decoding: partialLine, as: UTF8.self)
                        partialLine = Data()
                        lines.append(line)
                        for (id, waiter) in lineWaiters where line.hasPrefix(waiter.prefix) {
                            lineWaiters.removeValue(forKey: id)
                            resumeLines.append((waiter.continuation, .success(line)))
                        }
                    }
                    for (id, waiter) in lineWaiters {
                        lineWaiters.removeValue(forKey: id)
                        resumeLines.append((waiter.continuation, .failure(ProcessError.endedBeforeLine(
                            prefix: waiter.prefix, exit: exitStatus, transcript: transcriptLocked()))))
                    }
                }
            } else {
                if let data { errData.append(data) } else { errEOF = true }
                if !stderrWaiters.isEmpty {
                    let text = String(decoding: errData, as: UTF8.self)
                    for (id, waiter) in stderrWaiters {
                        if text.contains(waiter.needle) {
                            stderrWaiters.removeValue(forKey: id)
                            resumeText.append((waiter.continuation, .success(())))
                        } else if errEOF {
                            stderrWaiters.removeValue(forKey: id)
                            resumeText.append((waiter.continuation, .failure(ProcessError.endedBeforeText(
                                needle: waiter.needle, exit: exitStatus, transcript: transcriptLocked()))))
                        }
                    }
                }
            }
            completed = completedExitLocked()
            if completed != nil {
                resumeExit = Array(exitWaiters.values)
                exitWaiters.removeAll()
            }
        }
        for (continuation, result) in resumeLines { continuation.resume(with: result) }
        for (continuation, result) in resumeText { continuation.resume(with: result) }
        if let completed { for continuation in resumeExit { continuation.resume(returning: completed) } }
    }

    private func processExited(_ exit: ProcessExit) {
        var resumeExit: [CheckedContinuation<ProcessExit, Error>] = []
        lock.withLock {
            exitStatus = exit
            if completedExitLocked() != nil {
                resumeExit = Array(exitWaiters.values)
                exitWaiters.removeAll()
            }
        }
        for continuation in resumeExit { continuation.resume(returning: exit) }
        // A grandchild that inherited the pipes could keep them open forever: give the
        // readers a moment to drain, then report the exit anyway.
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) { [weak self] in
            self?.abandonPipes()
        }
    }

    private func abandonPipes() {
        var resumeExit: [CheckedContinuation<ProcessExit, Error>] = []
        var resumeLines: [(CheckedContinuation<String, Error>, ProcessError)] = []
        var resumeText: [(CheckedContinuation<Void, Error>, ProcessError)] = []
        var exit: ProcessExit?
        lock.withLock {
            pipesAbandoned = true
            exit = completedExitLocked()
            if exit != nil {
                resumeExit = Array(exitWaiters.values)
                exitWaiters.removeAll()
            }
            for (id, waiter) in lineWaiters {
                lineWaiters.removeValue(forKey: id)
                resumeLines.append((waiter.continuation, ProcessError.endedBeforeLine(
                    prefix: waiter.prefix, exit: exitStatus, transcript: transcriptLocked())))
            }
            for (id, waiter) in stderrWaiters {
                stderrWaiters.removeValue(forKey: id)
                resumeText.append((waiter.continuation, ProcessError.endedBeforeText(
                    needle: waiter.needle, exit: exitStatus, transcript: transcriptLocked())))
            }
        }
        if let exit { for continuation in resumeExit { continuation.resume(returning: exit) } }
        for (continuation, error) in resumeLines { continuation.resume(throwing: error) }
        for (continuation, error) in resumeText { continuation.resume(throwing: error) }
    }

    /// The exit status once the process has exited and both pipes are drained (or given up on).
    private func completedExitLocked() -> ProcessExit? {
        guard let exitStatus else { return nil }
        return (outEOF && errEOF) || pipesAbandoned ? exitStatus : nil
    }

    private func transcriptLocked() -> String {
        Self.formatTranscript(command: commandLine, exit: exitStatus, stdout: outData, stderr: errData)
    }

    static func shellQuote(_ word: String) -> String {
        let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_./:=@%+,"))
        if !word.isEmpty, word.unicodeScalars.allSatisfy({ safe.contains($0) }) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// Runs `body` with a started process and terminates the process afterwards, whether
/// `body` returns or throws.
public func withChildProcess<T: Sendable>(
    _ process: ChildProcess,
    grace: Double = 5,
    _ body: (ChildProcess) async throws -> T
) async throws -> T {
    do {
        let result = try await body(process)
        await process.terminate(grace: grace)
        return result
    } catch {
        await process.terminate(grace: grace)
        throw error
    }
}
