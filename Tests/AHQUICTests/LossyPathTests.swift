import AHQUIC
import Crypto
import NIOCore
import XCTest

/// 10% of datagrams lost in each direction: loss recovery still delivers every byte, with
/// network-sized and with loopback-sized datagrams (DatagramSizing).
final class LossyPathTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    /// Network-sized packets (what executors on other machines use): 64 MiB.
    func testSixtyFourMiBSurviveTenPercentLossBothWays() async throws {
        let relay = try await download(size: 64 * 1024 * 1024, lossRate: 0.10, loopbackDatagrams: false)
        for direction in 0..<2 {
            XCTAssertLessThanOrEqual(relay.largest[direction], 1452)
        }
    }

    /// Loopback-sized packets (up to 64 KiB each): a lost one costs more, recovery still works.
    func testLoopbackSizedDatagramsSurviveTenPercentLossBothWays() async throws {
        let relay = try await download(size: 16 * 1024 * 1024, lossRate: 0.10, loopbackDatagrams: true)
        XCTAssertGreaterThan(relay.largest[1], 16 * 1024, "the server's data packets were not loopback-sized")
    }

    /// Without loss the relay sees which sizes each configuration really sends.
    func testPeersOnLoopbackSendBigDatagramsOnlyAfterTheHandshake() async throws {
        let big = try await download(size: 4 * 1024 * 1024, lossRate: 0, loopbackDatagrams: true)
        XCTAssertGreaterThan(big.largest[1], 32 * 1024)
        XCTAssertTrue((1200...1452).contains(big.firstFromClient),
                      "the client's Initial must be an ordinary (padded) datagram, was \(big.firstFromClient) bytes")
        let small = try await download(size: 4 * 1024 * 1024, lossRate: 0, loopbackDatagrams: false)
        XCTAssertLessThanOrEqual(small.largest[0], 1452)
        XCTAssertLessThanOrEqual(small.largest[1], 1452)
    }

    struct RelayFigures {
        var dropped: [Int], forwarded: [Int], largest: [Int], firstFromClient: Int
    }

    /// Downloads `size` bytes through a relay dropping `lossRate` each way; checks every byte.
    private func download(size: Int, lossRate: Double, loopbackDatagrams: Bool) async throws -> RelayFigures {
        var serverConfiguration = fixture.serverConfiguration()
        var configuration = fixture.clientConfiguration()
        if !loopbackDatagrams {
            serverConfiguration.loopbackUDPPayloadSize = nil
            configuration.loopbackUDPPayloadSize = nil
        }
        let server = try await fixture.startServer(serverConfiguration) { $0.addLoopBoundHandler(DownloadServerStreamHandler(size: size)) }
        let (relayChannel, relay) = try await LossyUDPRelay.start(server: server.localAddress, lossRate: lossRate,
                                                                  seed: 0xA11CE, group: fixture.group)
        configuration.handshakeTimeout = .seconds(30)
        let connection = try await QUICClient.connect(to: relayChannel.localAddress!, configuration: configuration,
                                                      group: fixture.group, logger: fixture.logger)
        let promise = connection.eventLoop.makePromise(of: (Int, SHA256.Digest).self)
        _ = try await connection.openStream { $0.addLoopBoundHandler(HashingSink(finishOutputOnActive: true, promise: promise)) }.get()
        let (count, digest) = try await withTimeout(600, "\(size) bytes over a lossy path") { try await promise.futureResult.get() }
        XCTAssertEqual(count, size)
        XCTAssertEqual(digest, patternDigest(seed: 0, count: size))
        let figures = try await relayChannel.eventLoop.submit {
            RelayFigures(dropped: relay.dropped, forwarded: relay.forwarded, largest: relay.largest,
                         firstFromClient: relay.firstFromClient)
        }.get()
        if lossRate > 0 {
            // The relay really dropped about the given share each way.
            for direction in 0..<2 {
                let total = Double(figures.dropped[direction] + figures.forwarded[direction])
                XCTAssertGreaterThan(total, 100)
                // Within three standard deviations of a binomial draw of `total` datagrams
                // (loopback-sized runs carry only a few hundred).
                let accuracy = max(0.02, 3 * (lossRate * (1 - lossRate) / total).squareRoot())
                XCTAssertEqual(Double(figures.dropped[direction]) / total, lossRate, accuracy: accuracy)
            }
        }
        connection.close()
        try await relayChannel.close()
        await server.close()
        return figures
    }
}
