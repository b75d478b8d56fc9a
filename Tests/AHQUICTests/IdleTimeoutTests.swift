import AHQUIC
import NIOCore
import Foundation
import XCTest

/// Idle timeout and keep-alive, observed on both ends.
final class IdleTimeoutTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    func testIdleTimeoutIsDetectedByBothSides() async throws {
        var serverConfiguration = fixture.serverConfiguration()
        serverConfiguration.idleTimeout = .seconds(1)
        serverConfiguration.keepAliveInterval = nil
        var clientConfiguration = fixture.clientConfiguration()
        clientConfiguration.idleTimeout = .seconds(1)
        clientConfiguration.keepAliveInterval = nil
        let serverConnection = NIOLockedValueBoxHolder<QUICConnection>()
        let server = try await fixture.startServer(serverConfiguration, onConnection: { serverConnection.set($0) })
        let client = try await fixture.connect(to: server, clientConfiguration)
        let start = Date()
        try await withTimeout(10, "client idle close") { try await client.closeFuture.get() }
        let peer = try XCTUnwrap(serverConnection.get())
        try await withTimeout(10, "server idle close") { try await peer.closeFuture.get() }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.9, "closed before the idle timeout")
        let clientReason = try await client.eventLoop.submit { client.closeReason }.get()
        let serverReason = try await peer.eventLoop.submit { peer.closeReason }.get()
        XCTAssertEqual(clientReason, .idleTimeout)
        XCTAssertEqual(serverReason, .idleTimeout)
        try await server.waitUntilNoConnections()
        await server.close()
    }

    func testKeepAliveHoldsAnIdleConnectionOpen() async throws {
        var serverConfiguration = fixture.serverConfiguration()
        serverConfiguration.idleTimeout = .seconds(1)
        serverConfiguration.keepAliveInterval = nil
        var clientConfiguration = fixture.clientConfiguration()
        clientConfiguration.idleTimeout = .seconds(1)
        clientConfiguration.keepAliveInterval = .milliseconds(200)
        let server = try await fixture.startServer(serverConfiguration)
        let client = try await fixture.connect(to: server, clientConfiguration)
        // The scenario itself is "stay silent for 3 idle timeouts"; nothing to await instead.
        try await Task.sleep(nanoseconds: 3_000_000_000)
        let reason = try await client.eventLoop.submit { client.closeReason }.get()
        XCTAssertNil(reason, "keep-alive PINGs should have kept the connection open")
        let promise = client.eventLoop.makePromise(of: Void.self)
        _ = try await client.openStream { $0.addLoopBoundHandler(EchoClientStreamHandler(bytes: 1000, seed: 1, result: promise)) }.get()
        try await withTimeout(10, "echo after idle period") { try await promise.futureResult.get() }
        client.close()
        await server.close()
    }
}
