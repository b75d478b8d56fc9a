import Foundation

/// The thin side of `ah agent followers ...`: one request on the service's socket, events
/// back. When no service answers, it starts one (like ssh's ControlPersist or mutagen's
/// daemon): `ah agent followers daemon` detached into its own session, stdio to its log file,
/// so a script's `out=$(ah agent followers run ...)` returns when the command ends.
public struct LeaderClient: Sendable {
    public let paths: LeaderPaths
    /// argv of the service to start (nil: never start one; fail when none answers).
    public let autostart: [String]?
    /// How long a started service may take to answer.
    public var startTimeout: Duration = .seconds(20)

    public init(paths: LeaderPaths, autostart: [String]?) {
        self.paths = paths
        self.autostart = autostart
    }

    /// Sends `request`, hands every event but the last to `onEvent`, returns the result.
    public func send(_ request: LeaderRequest,
                     onEvent: @escaping @Sendable (LeaderEvent) -> Void) async throws -> LeaderResult {
        let socket: LeaderSocket
        if let connected = LeaderSocket.connect(path: paths.socket.path) {
            socket = connected
        } else {
            guard let autostart else {
                throw LeaderFailure.unreachable("no leader service answers on \(paths.socket.path)")
            }
            try start(autostart)
            socket = try await waitForService()
        }
        // The exchange blocks on the socket, so it runs on a thread of its own: blocking a
        // thread of Swift's cooperative pool could starve a service running in this same
        // process (tests) of the threads it needs to answer.
        let log = paths.log.path
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    defer { socket.close() }
                    try socket.writeLine(request)
                    while let line = try socket.nextLine() {
                        let event = try LeaderWire.decode(LeaderEvent.self, from: line)
                        switch event {
                        case .result(let result): return result
                        case .failure(let code, let message): throw LeaderFailure(exitCode: code, message)
                        default: onEvent(event)
                        }
                    }
                    throw LeaderFailure(exitCode: 1, "the leader service closed the connection without an answer (its log: \(log))")
                })
            }
            thread.name = "ah-leader-client"
            thread.start()
        }
    }

    /// Whether a service answers now (no auto-start).
    public func isRunning() async -> Bool {
        LeaderSocket.connect(path: paths.socket.path) != nil
    }

    private func waitForService() async throws -> LeaderSocket {
        let deadline = ContinuousClock.now + startTimeout
        var delay = Duration.milliseconds(10)
        while ContinuousClock.now < deadline {
            if let socket = LeaderSocket.connect(path: paths.socket.path) { return socket }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .milliseconds(200))
        }
        throw LeaderFailure(exitCode: 1, "the leader service did not start within \(startTimeout); its log: \(paths.log.path)")
    }

    /// A service outlives its caller by minutes: any descriptor the caller inherited (a CI
    /// runner's lock, the write end of `$(...)`'s pipe) must not stay open in it, or whoever
    /// waits for that descriptor to close waits for the service's idle exit. glibc's
    /// `posix_spawn_file_actions_addclosefrom_np` is not visible to Swift, so the caller marks
    /// its descriptors above stderr close-on-exec before spawning (this process execs nothing
    /// else that needs them).
    static func markInheritedDescriptorsCloseOnExec() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in names {
            guard let fd = Int32(name), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0, flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// Starts the service detached: its own session (no controlling terminal, not in the
    /// caller's process group), stdin /dev/null, stdout and stderr appended to the log.
    private func start(_ argv: [String]) throws {
        try paths.prepare()
        let logFD = open(paths.log.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard logFD >= 0 else {
            throw LeaderFailure(exitCode: 1, "cannot open the leader log \(paths.log.path): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc 2.26+): a new session, so terminal signals and the
        // caller's exit do not reach the service.
        posix_spawnattr_setflags(&attributes, Int16(0x80))
        Self.markInheritedDescriptorsCloseOnExec()
        let cArguments = argv.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ)
        guard status == 0 else {
            throw LeaderFailure(exitCode: 1, "cannot start the leader service \(argv[0]): \(String(cString: strerror(status)))")
        }
    }
}
