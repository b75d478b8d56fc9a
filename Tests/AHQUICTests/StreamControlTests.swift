import AHQUIC
import NIOCore
import Foundation
import XCTest

/// RESET_STREAM, STOP_SENDING and CONNECTION_CLOSE reach the peer with their codes.
final class StreamControlTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    /// Server-side handler that sends one outbound event as soon as the stream is active.
    final class SendEventOnActive: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let event: QUICStreamEvent
        init(_ event: QUICStreamEvent) { self.event = event }
        func channelActive(context: ChannelHandlerContext) {
            context.triggerUserOutboundEvent(event, promise: nil)
            if case .stopSending = event {
                // A server refusing an upload: stop the peer, then finish our own side.
                context.close(mode: .output, promise: nil)
            }
        }
    }

    /// Client-side handler that writes a little and reports the first stream error.
    final class ErrorCatcher: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let promise: EventLoopPromise<QUICStreamError>
        init(_ promise: EventLoopPromise<QUICStreamError>) { self.promise = promise }
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(NIOAny(ByteBuffer(string: "hello")), promise: nil)
        }
        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if let error = error as? QUICStreamError { promise.succeed(error) }
        }
    }

    private func firstStreamError(serverEvent: QUICStreamEvent) async throws -> QUICStreamError {
        let server = try await fixture.startServer { $0.addLoopBoundHandler(SendEventOnActive(serverEvent)) }
        let connection = try await fixture.connect(to: server)
        let promise = connection.eventLoop.makePromise(of: QUICStreamError.self)
        _ = try await connection.openStream { $0.addLoopBoundHandler(ErrorCatcher(promise)) }.get()
        let error = try await withTimeout(10, "stream error") { try await promise.futureResult.get() }
        connection.close()
        await server.close()
        return error
    }

    func testResetStreamArrivesAsChannelErrorWithItsCode() async throws {
        let error = try await firstStreamError(serverEvent: .reset(applicationErrorCode: 42))
        XCTAssertEqual(error, .resetByPeer(applicationErrorCode: 42))
    }

    func testStopSendingArrivesAsChannelErrorWithItsCode() async throws {
        let error = try await firstStreamError(serverEvent: .stopSending(applicationErrorCode: 7))
        XCTAssertEqual(error, .stopSendingByPeer(applicationErrorCode: 7))
    }

    func testGracefulCloseCarriesApplicationCodeAndReasonToThePeer() async throws {
        let serverConnection = NIOLockedValueBoxHolder<QUICConnection>()
        let server = try await fixture.startServer(onConnection: { serverConnection.set($0) })
        let connection = try await fixture.connect(to: server)
        connection.close(applicationErrorCode: 0x1234, reason: "maintenance window")
        try await connection.closeFuture.get()
        let peer = try XCTUnwrap(serverConnection.get())
        try await withTimeout(10, "server side close") { try await peer.closeFuture.get() }
        let reason = try await peer.eventLoop.submit { peer.closeReason }.get()
        XCTAssertEqual(reason, .closedByPeer(CloseInfo(kind: .application, code: 0x1234, reason: "maintenance window")))
        let own = try await connection.eventLoop.submit { connection.closeReason }.get()
        XCTAssertEqual(own, .closedLocally(CloseInfo(kind: .application, code: 0x1234, reason: "maintenance window")))
        await server.close()
    }

    func testOpeningAStreamOnAClosedConnectionFails() async throws {
        let server = try await fixture.startServer()
        let connection = try await fixture.connect(to: server)
        connection.close()
        try await connection.closeFuture.get()
        do {
            _ = try await connection.openStream().get()
            XCTFail("a closed connection must not open streams")
        } catch {}
        await server.close()
    }
}

/// A value set on one thread and read on another.
final class NIOLockedValueBoxHolder<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T? { lock.lock(); defer { lock.unlock() }; return value }
}
