import AHAccessPoint
import AHExecutor
import AHTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import XCTest

/// The executor agent's lifecycle in the library: `ExecutorAgent` in a `ServiceGroup` in this
/// process, driven with `triggerGracefulShutdown()` and task cancellation (what the first and
/// the second SIGTERM of `ah agent enroll` become). Its peers are real: an access point
/// (`AccessPointService`, also in-process), a TCP echo server as the agent's "sshd", and a
/// raw-socket CONNECT client holding a tunnel open through both.
final class ExecutorServiceDrainTests: XCTestCase {
    var directory: TemporaryDirectory!
    var echo: Channel!
    var accessPoint: (group: ServiceGroup, task: Task<Void, any Error>, started: AccessPointService.Started)!

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-executor-service")
        echo = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        accessPoint = try await startAccessPoint()
    }

    override func tearDown() async throws {
        accessPoint?.task.cancel()
        _ = try? await accessPoint?.task.value
        try? await echo?.close()
    }

    private var logger: Logger {
        var logger = Logger(label: "test.executor-service")
        logger.logLevel = .error
        return logger
    }

    private func startAccessPoint() async throws -> (ServiceGroup, Task<Void, any Error>, AccessPointService.Started) {
        var configuration = AccessPointService.Configuration(
            server: AccessPointServer.Configuration(dataDirectory: directory.file("data").path))
        configuration.server.quicHost = "127.0.0.1"
        configuration.server.quicPort = 0
        configuration.httpHost = "127.0.0.1"
        configuration.httpPort = 0
        let (stream, continuation) = AsyncStream.makeStream(of: AccessPointService.Started.self)
        let service = AccessPointService(configuration: configuration, logger: logger) { continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let task = Task { try await group.run() }
        var iterator = stream.makeAsyncIterator()
        guard let started = await iterator.next() else { throw RawSocketError("the access point never started") }
        return (group, task, started)
    }

    /// `ah` against the in-process access point's data directory (token and JWT minting).
    private func ah(_ arguments: [String]) async throws -> String {
        let result = try await ProcessRunner.run(try BuiltProducts.ah(), arguments + ["--data-dir", directory.file("data").path])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        return result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An enrolled agent (in-process enrollment) in its own ServiceGroup, running.
    struct RunningAgent {
        let group: ServiceGroup
        let task: Task<Void, any Error>
        var events: AsyncStream<ExecutorEvent>.AsyncIterator
    }

    private func startAgent(grace: TimeInterval) async throws -> RunningAgent {
        let quicPort = accessPoint.started.quicAddress.port ?? 0
        let state = try ExecutorStateDirectory(path: directory.file("agent").path)
        _ = try await Enroller.enroll(host: "127.0.0.1", port: quicPort, token: try await ah(["token", "create"]),
                                      caPin: accessPoint.started.caPin, name: "node", tags: [:], state: state,
                                      group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        var configuration = ExecutorAgent.Configuration(host: "127.0.0.1", port: quicPort)
        configuration.tunnelPolicy = TunnelPolicy(sshEnabled: true, sshDestination: .init(host: "127.0.0.1", port: echo.localAddress?.port ?? 0))
        let hostKey = directory.file("host_key.pub").path
        // Any well-formed key: the echo server is not an sshd, nothing verifies it here.
        try "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFr9dfNpTEfbb6L4P6Rm3EYtGS4WNRD4Ye9oJ0XqaJgP test\n"
            .write(toFile: hostKey, atomically: true, encoding: .utf8)
        configuration.sshHostKeyFiles = [hostKey]
        configuration.heartbeatInterval = .seconds(1)
        configuration.shutdownGrace = grace
        let agent = ExecutorAgent(state: state, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [agent], logger: logger))
        let task = Task { try await group.run() }
        var events = agent.events.makeAsyncIterator()
        let first = await events.next()
        guard case .connected = first else { throw RawSocketError("the agent did not connect: \(String(describing: first))") }
        return RunningAgent(group: group, task: task, events: events)
    }

    /// An open tunnel through the access point and the agent to the echo server, checked to echo.
    private func openTunnel() async throws -> RawSocket {
        let jwt = try await ah(["user", "token", "--sub", "alice"])
        let socket = try RawSocket(port: accessPoint.started.httpAddress.port ?? 0)
        try socket.send("CONNECT node:22 HTTP/1.1\r\nHost: node:22\r\nProxy-Authorization: Bearer \(jwt)\r\n\r\n")
        let (head, found) = socket.read(until: "\r\n\r\n", timeout: 20)
        XCTAssertTrue(found && head.hasPrefix("HTTP/1.1 200"), head)
        try socket.send("ping\n")
        XCTAssertTrue(socket.read(until: "ping\n", timeout: 10).found, "the tunnel should echo")
        return socket
    }

    /// The next event that is not a heartbeat-time side note (host key reports).
    private func nextEvent(_ events: inout AsyncStream<ExecutorEvent>.AsyncIterator) async -> ExecutorEvent? {
        while let event = await events.next() {
            if case .hostKeysReported = event { continue }
            return event
        }
        return nil
    }

    func testGracefulShutdownKeepsTheOpenTunnelAndEndsWithIt() async throws {
        var agent = try await startAgent(grace: 60)
        let tunnel = try await openTunnel()

        await agent.group.triggerGracefulShutdown()
        let draining = await nextEvent(&agent.events)
        guard case .draining(let open) = draining else { return XCTFail("expected draining, got \(String(describing: draining))") }
        XCTAssertEqual(open, 1, "the open tunnel is counted into the drain")
        // Draining: the open tunnel still carries bytes both ways (the service has not closed
        // the connection under it).
        try tunnel.send("still\n")
        XCTAssertTrue(tunnel.read(until: "still\n", timeout: 10).found, "an open tunnel works on during the grace period")

        // The last tunnel ends: the service returns long before its 60 s grace period.
        let closed = Date()
        tunnel.close()
        try await agent.task.value
        XCTAssertLessThan(Date().timeIntervalSince(closed), 5, "the drain ends when the last tunnel does")
    }

    func testCancellationDuringTheDrainCutsTheGraceAndTheTunnel() async throws {
        var agent = try await startAgent(grace: 60)
        let tunnel = try await openTunnel()

        await agent.group.triggerGracefulShutdown()
        let draining = await nextEvent(&agent.events)
        guard case .draining(1) = draining else { return XCTFail("expected draining with 1 open, got \(String(describing: draining))") }
        // The second signal: cancellation ends the 60 s grace at once and closes the tunnel.
        let cancelled = Date()
        agent.task.cancel()
        _ = try? await agent.task.value
        XCTAssertLessThan(Date().timeIntervalSince(cancelled), 5, "cancellation must cut the grace period short")
        XCTAssertTrue(tunnel.readUntilClose(timeout: 10).closed, "the cut tunnel is closed")
    }
}

/// Echoes every byte: the executor's "sshd" in these tests.
private final class Echo: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}
