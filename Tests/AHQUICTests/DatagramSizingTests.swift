@testable import AHQUIC
import CNgtcp2
import NIOCore
import XCTest

/// Which peers get loopback-sized datagrams, and what a server does once it has let go of
/// its TLS session after the handshake.
final class DatagramSizingTests: XCTestCase {
    func testOnlyLoopbackAddressesCountAsLoopback() throws {
        let loopback = ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]
        let network = ["10.0.0.1", "192.168.1.20", "128.0.0.1", "::2", "fe80::1", "::ffff:10.0.0.1", "2001:db8::1"]
        for host in loopback {
            XCTAssertTrue(try SocketAddress(ipAddress: host, port: 4433).isLoopback, host)
        }
        for host in network {
            XCTAssertFalse(try SocketAddress(ipAddress: host, port: 4433).isLoopback, host)
        }
    }

    func testSizesFollowThePathAndTheConfiguration() throws {
        let fixture = try QUICFixture()
        defer { fixture.shutdown() }
        var configuration = fixture.clientConfiguration()
        let v4 = DatagramSizing(remote: try SocketAddress(ipAddress: "127.0.0.1", port: 1), configuration: configuration)
        XCTAssertTrue(v4.isLoopback)
        XCTAssertEqual(v4.handshake, 1452)
        XCTAssertEqual(v4.established, 65_507)
        // Never more than one UDP datagram can carry (IPv4 65,507, IPv6 65,527).
        var generous = configuration
        generous.loopbackUDPPayloadSize = 70_000
        XCTAssertEqual(DatagramSizing(remote: try SocketAddress(ipAddress: "127.0.0.1", port: 1), configuration: generous).established, 65_507)
        XCTAssertEqual(DatagramSizing(remote: try SocketAddress(ipAddress: "::1", port: 1), configuration: generous).established, 65_527)
        let remote = DatagramSizing(remote: try SocketAddress(ipAddress: "10.1.2.3", port: 1), configuration: configuration)
        XCTAssertFalse(remote.isLoopback)
        XCTAssertEqual(remote.established, 1452)

        configuration.loopbackUDPPayloadSize = 16_384
        XCTAssertEqual(DatagramSizing(remote: try SocketAddress(ipAddress: "127.0.0.1", port: 1), configuration: configuration).established, 16_384)
        configuration.loopbackUDPPayloadSize = nil
        let off = DatagramSizing(remote: try SocketAddress(ipAddress: "127.0.0.1", port: 1), configuration: configuration)
        XCTAssertFalse(off.isLoopback)
        XCTAssertEqual(off.established, 1452)
    }

    /// The server frees its GnuTLS session once the handshake is complete. A client that
    /// then still sends handshake (CRYPTO) data — a real ngtcp2 client made to submit some at
    /// the application level — gets the connection closed with TLS alert unexpected_message
    /// (transport error 0x100 + 10), and the server keeps serving.
    func testServerClosesOnCryptoDataAfterTheHandshake() async throws {
        let fixture = try QUICFixture()
        defer { fixture.shutdown() }
        let server = try await fixture.startServer()
        let connection = try await QUICClient.connect(to: server.localAddress, configuration: fixture.clientConfiguration(),
                                                      group: fixture.group, logger: fixture.logger)
        // An echo round trip first: the server is past the handshake and holds no session.
        try await assertEcho(connection)
        let stray: [UInt8] = [24, 0, 0, 4, 0, 0, 0, 0]  // a KeyUpdate message, which QUIC forbids
        try await connection.eventLoop.submit {
            let rc = stray.withUnsafeBufferPointer {
                ngtcp2_conn_submit_crypto_data(connection.conn, NGTCP2_CRYPTO_LEVEL_APPLICATION, $0.baseAddress, $0.count)
            }
            XCTAssertEqual(rc, 0)
            connection.scheduleWrite()
        }.get()
        try await withTimeout(10, "the server closing the connection") { try await connection.closeFuture.get() }
        guard case .closedByPeer(let info)? = connection.closeReason else {
            return XCTFail("expected the server to close the connection, got \(String(describing: connection.closeReason))")
        }
        XCTAssertEqual(info.kind, .transport)
        XCTAssertEqual(info.code, 0x100 + 10)
        XCTAssertTrue(info.reason.contains("TLS handshake data after the handshake"), info.reason)
        // The next client is served as usual.
        let next = try await QUICClient.connect(to: server.localAddress, configuration: fixture.clientConfiguration(),
                                                group: fixture.group, logger: fixture.logger)
        try await assertEcho(next)
        next.close()
        await server.close()
    }

    private func assertEcho(_ connection: QUICConnection) async throws {
        let promise = connection.eventLoop.makePromise(of: Void.self)
        _ = try await connection.openStream {
            $0.addLoopBoundHandler(EchoClientStreamHandler(bytes: 64 * 1024, seed: 7, result: promise))
        }.get()
        try await withTimeout(10, "echo") { try await promise.futureResult.get() }
    }
}
