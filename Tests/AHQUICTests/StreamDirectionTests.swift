import AHQUIC
import Crypto
import NIOCore
import Foundation
import XCTest

/// Bidirectional and unidirectional streams, opened by either side.
final class StreamDirectionTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    func testClientOpenedUnidirectionalStreamDeliversToServer() async throws {
        let received = NIOLockedValueBoxHolder<EventLoopFuture<(Int, SHA256.Digest)>>()
        let server = try await fixture.startServer { stream in
            XCTAssertFalse(stream.isBidirectional)
            XCTAssertFalse(stream.isLocallyInitiated)
            let promise = stream.eventLoop.makePromise(of: (Int, SHA256.Digest).self)
            received.set(promise.futureResult)
            return stream.addLoopBoundHandler(HashingSink(finishOutputOnActive: false, promise: promise))
        }
        let connection = try await fixture.connect(to: server)
        let stream = try await connection.openStream(bidirectional: false) { $0.addLoopBoundHandler(PatternWriter(count: 3_000_000, seed: 9)) }.get()
        XCTAssertFalse(stream.isBidirectional)
        try await withTimeout(30, "unidirectional stream closes") { try await stream.closeFuture.get() }
        let (count, digest) = try await withTimeout(30, "server receives") { try await XCTUnwrap(received.get()).get() }
        XCTAssertEqual(count, 3_000_000)
        XCTAssertEqual(digest, patternDigest(seed: 9, count: 3_000_000))
        connection.close()
        await server.close()
    }

    func testServerOpensStreamsToTheClientBothKinds() async throws {
        let clientReceived = NIOLockedValueBoxHolder<[EventLoopFuture<(Int, SHA256.Digest)>]>()
        clientReceived.set([])
        let lock = NSLock()
        let server = try await fixture.startServer(onConnection: { connection in
            // The access point opens streams towards executors (tunnels): exercise that direction.
            _ = connection.openStream(bidirectional: false) { $0.addLoopBoundHandler(PatternWriter(count: 500_000, seed: 1)) }
            _ = connection.openStream(bidirectional: true) { $0.addLoopBoundHandler(PatternWriter(count: 700_000, seed: 2)) }
        })
        let allArrived = fixture.group.next().makePromise(of: Void.self)
        let connection = try await fixture.connect(to: server, inboundStreamInitializer: { stream in
            let promise = stream.eventLoop.makePromise(of: (Int, SHA256.Digest).self)
            lock.lock()
            var list = clientReceived.get() ?? []
            list.append(promise.futureResult)
            clientReceived.set(list)
            if list.count == 2 { allArrived.succeed(()) }
            lock.unlock()
            // On the bidirectional one, finish our side at once: the server only writes.
            return stream.addLoopBoundHandler(HashingSink(finishOutputOnActive: stream.isBidirectional, promise: promise))
        })
        try await withTimeout(30, "two server-opened streams") { try await allArrived.futureResult.get() }
        var results: [Int: SHA256.Digest] = [:]
        for future in clientReceived.get() ?? [] {
            let (count, digest) = try await withTimeout(30, "stream data") { try await future.get() }
            results[count] = digest
        }
        XCTAssertEqual(results[500_000], patternDigest(seed: 1, count: 500_000))
        XCTAssertEqual(results[700_000], patternDigest(seed: 2, count: 700_000))
        connection.close()
        await server.close()
    }
}
