import AHAccessPoint
import AHTestSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import XCTest

/// The access point's lifecycle in the library: `AccessPointService` in a `ServiceGroup`
/// in this process, driven with `triggerGracefulShutdown()` and task cancellation (what the
/// first and the second SIGTERM become). Its peers are real: an `ah agent enroll` process
/// whose "sshd" is a TCP echo server in this process, and raw-socket CONNECT clients.
final class AccessPointServiceTests: XCTestCase {
    var directory: TemporaryDirectory!
    var echo: Channel!
    var agent: ChildProcess?

    override func setUp() async throws {
        directory = try TemporaryDirectory(prefix: "ah-service")
        echo = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.pipeline.addHandler(EchoHandler()) }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    override func tearDown() async throws {
        if let agent { _ = await agent.terminate(grace: 2) }
        try? await echo.close()
    }

    /// A started service, its group and the task running the group.
    struct Running {
        let group: ServiceGroup
        let task: Task<Void, any Error>
        let started: AccessPointService.Started
        var httpPort: Int { started.httpAddress.port ?? 0 }
    }

    private func startService(grace: TimeInterval) async throws -> Running {
        var configuration = AccessPointService.Configuration(
            server: AccessPointServer.Configuration(dataDirectory: directory.file("data").path))
        configuration.server.quicHost = "127.0.0.1"
        configuration.server.quicPort = 0
        configuration.httpHost = "127.0.0.1"
        configuration.httpPort = 0
        configuration.shutdownGrace = grace
        var logger = Logger(label: "test.service")
        logger.logLevel = .error
        let (stream, continuation) = AsyncStream.makeStream(of: AccessPointService.Started.self)
        let service = AccessPointService(configuration: configuration, logger: logger) { continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let task = Task { try await group.run() }
        var iterator = stream.makeAsyncIterator()
        guard let started = await iterator.next() else { throw RawSocketError("the service never started") }
        return Running(group: group, task: task, started: started)
    }

    /// Enrolls `node` with the echo server as its sshd and waits until it is connected.
    private func enrollAgent(_ running: Running) async throws {
        let dataDir = directory.file("data").path
        let token = try await ah(["token", "create", "--data-dir", dataDir])
        XCTAssertEqual(token.exit, .exited(0), token.transcript)
        agent = try await startAgent([
            "--remote-server", "quic://127.0.0.1:\(running.started.quicAddress.port ?? 0)",
            "--state-dir", directory.file("agent").path, "--name", "node",
            "--token", token.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines), "--ca-pin", running.started.caPin,
            "--ssh-dst", "127.0.0.1:\(echo.localAddress?.port ?? 0)", "--ssh-host-key", try hostKeyFile(),
            "--heartbeat-interval", "1s"])
    }

    private func hostKeyFile() throws -> String {
        let path = directory.file("host_key.pub").path
        // Any well-formed key: the echo server is not an sshd, nothing verifies it here.
        try "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFr9dfNpTEfbb6L4P6Rm3EYtGS4WNRD4Ye9oJ0XqaJgP test\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func userToken() async throws -> String {
        let result = try await ah(["user", "token", "--data-dir", directory.file("data").path, "--sub", "alice"])
        XCTAssertEqual(result.exit, .exited(0), result.transcript)
        return result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// An open tunnel through the service to the echo server, checked to echo.
    private func openTunnel(_ running: Running, jwt: String) throws -> RawSocket {
        let socket = try RawSocket(port: running.httpPort)
        try socket.send("CONNECT node:22 HTTP/1.1\r\nHost: node:22\r\nProxy-Authorization: Bearer \(jwt)\r\n\r\n")
        let (head, found) = socket.read(until: "\r\n\r\n", timeout: 20)
        XCTAssertTrue(found && head.hasPrefix("HTTP/1.1 200"), head)
        try socket.send("ping\n")
        XCTAssertTrue(socket.read(until: "ping\n", timeout: 10).found, "the tunnel should echo")
        return socket
    }

    private func status(_ running: Running, _ request: String) throws -> Int {
        let socket = try RawSocket(port: running.httpPort)
        try socket.send(request)
        let (head, _) = socket.read(until: "\r\n\r\n", timeout: 10)
        return head.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? -1
    }

    private func readyz(_ running: Running) throws -> Int {
        try status(running, "GET /api/v1/readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    }

    func testDrainRefusesNewWorkKeepsOpenTunnelsAndASecondSignalCutsTheGraceShort() async throws {
        let running = try await startService(grace: 60)
        try await enrollAgent(running)
        let jwt = try await userToken()
        XCTAssertEqual(try readyz(running), 200)
        let tunnel = try openTunnel(running, jwt: jwt)

        // First signal: readiness and new tunnels are refused, the open one keeps working.
        await running.group.triggerGracefulShutdown()
        var ready = 200
        // readyz is the observable here (an HTTP answer, not an event we can subscribe to): poll it.
        for _ in 0..<50 where ready == 200 {
            ready = try readyz(running)
            if ready == 200 { try await Task.sleep(nanoseconds: 20_000_000) }
        }
        XCTAssertEqual(ready, 503, "readyz must fail once the drain starts")
        XCTAssertEqual(try status(running, "CONNECT node:22 HTTP/1.1\r\nHost: node:22\r\nProxy-Authorization: Bearer \(jwt)\r\n\r\n"), 503)
        try tunnel.send("still\n")
        XCTAssertTrue(tunnel.read(until: "still\n", timeout: 10).found, "an open tunnel works on during the grace period")
        // The executor was told Goodbye (it logs it).
        try await agent!.waitForStderr(containing: "access point is going away", timeout: 10)

        // Second signal: cancellation ends the 60 s grace at once and closes the tunnel.
        let cancelled = Date()
        running.task.cancel()
        _ = try? await running.task.value
        XCTAssertLessThan(Date().timeIntervalSince(cancelled), 5, "cancellation must cut the grace period short")
        XCTAssertTrue(tunnel.readUntilClose(timeout: 10).closed, "the cut tunnel is closed")
    }

    func testGracePeriodEndsWithTheLastTunnel() async throws {
        let running = try await startService(grace: 60)
        try await enrollAgent(running)
        let tunnel = try openTunnel(running, jwt: try await userToken())
        await running.group.triggerGracefulShutdown()
        // The service waits for the tunnel, not for the whole grace period. The executor logging
        // the Goodbye is the drain's last step before that wait (readyz and new CONNECTs are
        // refused before it), so the tunnel closes while the drain is waiting for it.
        try await agent!.waitForStderr(containing: "access point is going away", timeout: 10)
        XCTAssertEqual(try readyz(running), 503)
        let closed = Date()
        tunnel.close()
        try await running.task.value
        XCTAssertLessThan(Date().timeIntervalSince(closed), 5, "the drain ends when the last tunnel does")
    }

    func testGracePeriodExpiresAndCutsWhatIsLeft() async throws {
        let running = try await startService(grace: 1)
        try await enrollAgent(running)
        let tunnel = try openTunnel(running, jwt: try await userToken())
        let started = Date()
        await running.group.triggerGracefulShutdown()
        try await running.task.value
        let took = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(took, 0.9, "open tunnels get the grace period")
        XCTAssertLessThan(took, 6)
        XCTAssertTrue(tunnel.readUntilClose(timeout: 10).closed)
    }

    func testStartFailureNamesTheAddressInUse() async throws {
        let first = try await startService(grace: 1)
        defer { first.task.cancel() }
        var configuration = AccessPointService.Configuration(
            server: AccessPointServer.Configuration(dataDirectory: directory.file("data2").path))
        configuration.server.quicHost = "127.0.0.1"
        configuration.server.quicPort = first.started.quicAddress.port ?? 0
        configuration.httpHost = "127.0.0.1"
        configuration.httpPort = 0
        let service = AccessPointService(configuration: configuration, logger: Logger(label: "test"))
        do {
            try await service.run()
            XCTFail("a second access point on the same QUIC port must not start")
        } catch let error as AccessPointService.StartError {
            XCTAssertTrue(error.description.contains("address already in use"), error.description)
            XCTAssertTrue(error.description.contains("127.0.0.1:\(first.started.quicAddress.port ?? 0)"), error.description)
        }
    }
}

/// Echoes every byte: the executor's "sshd" in these tests.
private final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.writeAndFlush(data, promise: nil)
    }
}
