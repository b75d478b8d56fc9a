import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// What answers requests: the leader engine (or a test double in the daemon's own tests).
public protocol LeaderRequestHandler: Sendable {
    /// Answers one request; `emit` sends progress and output as it comes. Returns the final
    /// result, or throws a `LeaderFailure` (its exit code goes to the client).
    func handle(_ request: LeaderRequest, emit: @escaping @Sendable (LeaderEvent) async -> Void) async throws -> LeaderResult
    /// Ends sessions and helpers; called once when the service stops.
    func shutdown() async
}

/// A whole-request failure with its cli.md exit code.
public struct LeaderFailure: Error, CustomStringConvertible, Sendable {
    public let exitCode: Int32
    public let description: String

    public init(exitCode: Int32, _ description: String) {
        self.exitCode = exitCode
        self.description = description
    }

    public static func usage(_ text: String) -> LeaderFailure { LeaderFailure(exitCode: 2, text) }
    public static func unreachable(_ text: String) -> LeaderFailure { LeaderFailure(exitCode: 3, text) }
}

/// The leader service: serves `LeaderRequest`s on a Unix socket (0600, in a 0700 directory)
/// until stopped, until `ah agent followers stop`, or after `idleExit` without requests.
/// Requests are served concurrently. A second service for the same socket (two commands
/// auto-starting at once) finds the lock held and exits quietly.
public final class LeaderDaemon: Service, Sendable {
    let paths: LeaderPaths
    let handler: any LeaderRequestHandler
    let idleExit: Duration
    let logger: Logger
    private let activity = NIOLockedValueBox<(active: Int, last: ContinuousClock.Instant, stop: Bool)>((0, .now, false))

    public init(paths: LeaderPaths, handler: any LeaderRequestHandler, idleExit: Duration, logger: Logger) {
        self.paths = paths
        self.handler = handler
        self.idleExit = idleExit
        self.logger = logger
    }

    public struct AlreadyRunning: Error, CustomStringConvertible {
        public let description: String
    }

    public func run() async throws {
        try paths.prepare()
        let lock = try LockFile(path: paths.lock.path)
        guard lock.tryLock() else {
            throw AlreadyRunning(description: "a leader service for this fleet is already running (lock \(paths.lock.path))")
        }
        defer { lock.release() }
        let socketPath = paths.socket.path
        // We hold the lock, so a socket file left behind is stale (a killed service).
        unlink(socketPath)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: socketPath) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        chmod(socketPath, 0o600)
        logger.info("leader service listening", metadata: ["socket": "\(socketPath)", "pid": "\(getpid())",
                                                           "idleExit": "\(idleExit)"])
        defer { unlink(socketPath) }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watchIdle() }
            group.addTask {
                do {
                    try await server.executeThenClose { connections in
                        try await withThrowingDiscardingTaskGroup { children in
                            for try await connection in connections.cancelOnGracefulShutdown() {
                                children.addTask { await self.serve(connection) }
                            }
                        }
                    }
                } catch {
                    self.logger.error("leader socket failed", metadata: ["error": "\(error)"])
                }
            }
            await self.waitForStop()
            group.cancelAll()
        }
        await handler.shutdown()
        logger.info("leader service stopped")
    }

    /// Returns when a stop was asked for, the service was idle for `idleExit`, or the
    /// group shuts down.
    private func waitForStop() async {
        await withGracefulShutdownHandler {
            while !Task.isCancelled {
                if activity.withLockedValue({ $0.stop }) { return }
                try? await Task.sleep(for: .milliseconds(100))
            }
        } onGracefulShutdown: {
            self.activity.withLockedValue { $0.stop = true }
        }
    }

    private func watchIdle() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let idle = activity.withLockedValue { state -> Bool in
                state.active == 0 && ContinuousClock.now - state.last >= idleExit
            }
            if idle {
                logger.info("no requests for \(idleExit): stopping")
                activity.withLockedValue { $0.stop = true }
                return
            }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        activity.withLockedValue { $0.active += 1 }
        defer { activity.withLockedValue { $0.active -= 1; $0.last = .now } }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var lines = LineReader(inbound)
                guard let line = try await lines.next() else { return }
                let request: LeaderRequest
                do { request = try LeaderWire.decode(LeaderRequest.self, from: line) } catch {
                    try await outbound.writeLine(LeaderEvent.failure(exitCode: 1, message: "the leader service could not read the request: \(error)"))
                    return
                }
                let writer = EventWriter(outbound: outbound)
                do {
                    let result = try await handler.handle(request) { event in await writer.send(event) }
                    await writer.send(.result(result))
                    if case .stopped = result { activity.withLockedValue { $0.stop = true } }
                } catch let failure as LeaderFailure {
                    await writer.send(.failure(exitCode: failure.exitCode, message: failure.description))
                } catch {
                    await writer.send(.failure(exitCode: 1, message: "\(error)"))
                }
                // A written event may still sit in NIO's buffer (a long result, a slow reader);
                // closing now would cut it. The client closes once it has read the last event:
                // wait for that end of its stream (or its failure) before closing our side.
                while (try? await lines.next()) != nil {}
            }
        } catch {
            logger.debug("leader client connection ended", metadata: ["error": "\(error)"])
        }
    }
}

/// Serializes event lines onto one connection; a client that went away just stops receiving.
private actor EventWriter {
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var broken = false

    init(outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) { self.outbound = outbound }

    func send(_ event: LeaderEvent) async {
        guard !broken else { return }
        do { try await outbound.writeLine(event) } catch { broken = true }
    }
}

/// An flock(2) on a file: held while the process lives, released by the kernel if it dies.
final class LockFile: Sendable {
    let fd: Int32

    init(path: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw LeaderFailure(exitCode: 1, "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
    }

    func tryLock() -> Bool { flock(fd, LOCK_EX | LOCK_NB) == 0 }

    func release() {
        _ = flock(fd, LOCK_UN)
    }

    deinit { close(fd) }
}
