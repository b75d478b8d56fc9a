import AHQUIC
import NIOCore
import XCTest

/// Connection bounds and address validation on the server.
final class ServerLimitsTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    func testConnectionsBeyondTheLimitAreRefused() async throws {
        var configuration = fixture.serverConfiguration()
        configuration.maxConnections = 1
        let server = try await fixture.startServer(configuration)
        let first = try await fixture.connect(to: server)
        do {
            _ = try await fixture.connect(to: server)
            XCTFail("second connection should be refused")
        } catch {
            XCTAssertTrue("\(error)".contains("server busy"), "\(error)")
        }
        first.close()
        try await first.closeFuture.get()
        try await withTimeout(10, "slot freed") { try await server.waitUntilNoConnections() }
        let second = try await fixture.connect(to: server)
        second.close()
        await server.close()
    }

    func testServerWithoutRetryStillValidatesPeers() async throws {
        var configuration = fixture.serverConfiguration()
        configuration.requireRetry = false
        let server = try await fixture.startServer(configuration)
        let connection = try await fixture.connect(to: server)
        XCTAssertEqual(connection.peerIdentity, fixture.serverID)
        let promise = connection.eventLoop.makePromise(of: Void.self)
        _ = try await connection.openStream { $0.addLoopBoundHandler(EchoClientStreamHandler(bytes: 100_000, seed: 3, result: promise)) }.get()
        try await promise.futureResult.get()
        connection.close()
        await server.close()
    }

    func testManyClientsAtOnceAllConnectAndEcho() async throws {
        let server = try await fixture.startServer()
        let count = 50
        let ok = try await withTimeout(60, "50 clients") {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<count {
                    group.addTask {
                        let connection = try await self.fixture.connect(to: server)
                        let promise = connection.eventLoop.makePromise(of: Void.self)
                        _ = try await connection.openStream {
                            $0.addLoopBoundHandler(EchoClientStreamHandler(bytes: 10_000, seed: index, result: promise))
                        }.get()
                        try await promise.futureResult.get()
                        connection.close()
                        return true
                    }
                }
                var n = 0
                for try await success in group where success { n += 1 }
                return n
            }
        }
        XCTAssertEqual(ok, count)
        await server.close()
    }
}
