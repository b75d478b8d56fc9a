import AHQUIC
import Crypto
import NIOCore
import XCTest

/// 10% of datagrams lost in each direction: loss recovery still delivers every byte.
final class LossyPathTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    func testSixtyFourMiBSurviveTenPercentLossBothWays() async throws {
        let size = 64 * 1024 * 1024
        let server = try await fixture.startServer { $0.pipeline.addHandler(DownloadServerStreamHandler(size: size)) }
        let (relayChannel, relay) = try await LossyUDPRelay.start(server: server.localAddress, lossRate: 0.10,
                                                                  seed: 0xA11CE, group: fixture.group)
        var configuration = fixture.clientConfiguration()
        configuration.handshakeTimeout = .seconds(30)
        let connection = try await QUICClient.connect(to: relayChannel.localAddress!, configuration: configuration,
                                                      group: fixture.group, logger: fixture.logger)
        let promise = connection.eventLoop.makePromise(of: (Int, SHA256.Digest).self)
        _ = try await connection.openStream { $0.pipeline.addHandler(HashingSink(finishOutputOnActive: true, promise: promise)) }.get()
        let (count, digest) = try await withTimeout(600, "64 MiB over a lossy path") { try await promise.futureResult.get() }
        XCTAssertEqual(count, size)
        XCTAssertEqual(digest, patternDigest(seed: 0, count: size))
        let (dropped, forwarded) = try await relayChannel.eventLoop.submit { (relay.dropped, relay.forwarded) }.get()
        // The relay really dropped about a tenth each way.
        for direction in 0..<2 {
            let total = Double(dropped[direction] + forwarded[direction])
            XCTAssertGreaterThan(total, 100)
            XCTAssertEqual(Double(dropped[direction]) / total, 0.10, accuracy: 0.02)
        }
        connection.close()
        try await relayChannel.close()
        await server.close()
    }
}
