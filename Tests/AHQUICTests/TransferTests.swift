import AHQUIC
import Crypto
import NIOCore
import XCTest

/// Data integrity over real UDP sockets on loopback.
final class TransferTests: XCTestCase {
    var fixture: QUICFixture!

    override func setUpWithError() throws { fixture = try QUICFixture() }
    override func tearDown() { fixture.shutdown() }

    func testOneThousandConcurrentStreamsEchoWithMatchingChecksums() async throws {
        let server = try await fixture.startServer()
        let connection = try await fixture.connect(to: server)
        XCTAssertEqual(connection.peerIdentity, fixture.serverID)
        let streamCount = 1000
        let bytesPerStream = 16 * 1024
        let results = try await withTimeout(120, "1000 echoed streams") {
            try await withThrowingTaskGroup(of: (Int, ChecksumEchoClient.Result).self) { group in
                for index in 0..<streamCount {
                    group.addTask {
                        let promise = connection.eventLoop.makePromise(of: ChecksumEchoClient.Result.self)
                        _ = try await connection.openStream { stream in
                            stream.addLoopBoundHandler(ChecksumEchoClient(bytes: bytesPerStream, seed: index, promise: promise))
                        }.get()
                        return (index, try await promise.futureResult.get())
                    }
                }
                var all: [Int: ChecksumEchoClient.Result] = [:]
                for try await (index, result) in group { all[index] = result }
                return all
            }
        }
        XCTAssertEqual(results.count, streamCount)
        for (index, result) in results {
            XCTAssertEqual(result.sent, bytesPerStream)
            XCTAssertEqual(result.received, bytesPerStream, "stream \(index) short")
            XCTAssertEqual(result.sentDigest, result.receivedDigest, "stream \(index) corrupted")
            XCTAssertEqual(result.sentDigest, patternDigest(seed: index, count: bytesPerStream))
        }
        connection.close()
        await server.close()
    }

    func testTwoHundredFiftySixMiBDownloadMatchesSHA256() async throws {
        let size = 256 * 1024 * 1024
        let server = try await fixture.startServer { $0.addLoopBoundHandler(DownloadServerStreamHandler(size: size)) }
        let connection = try await fixture.connect(to: server)
        let promise = connection.eventLoop.makePromise(of: (Int, SHA256.Digest).self)
        _ = try await connection.openStream { $0.addLoopBoundHandler(HashingSink(finishOutputOnActive: true, promise: promise)) }.get()
        let (count, digest) = try await withTimeout(300, "256 MiB download") { try await promise.futureResult.get() }
        XCTAssertEqual(count, size)
        XCTAssertEqual(digest, patternDigest(seed: 0, count: size))
        connection.close()
        await server.close()
    }

    func testStreamsOpenedBeyondThePeerLimitWaitForCredit() async throws {
        var configuration = fixture.serverConfiguration()
        configuration.maxConcurrentBidirectionalStreams = 4
        let server = try await fixture.startServer(configuration)
        let connection = try await fixture.connect(to: server)
        let digests = try await withTimeout(60, "streams beyond the limit") {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let promise = connection.eventLoop.makePromise(of: ChecksumEchoClient.Result.self)
                        _ = try await connection.openStreamWaitingForCredit { stream in
                            stream.addLoopBoundHandler(ChecksumEchoClient(bytes: 4096, seed: index, promise: promise))
                        }.get()
                        let result = try await promise.futureResult.get()
                        return result.sentDigest == result.receivedDigest && result.received == 4096
                    }
                }
                var ok = 0
                for try await matched in group where matched { ok += 1 }
                return ok
            }
        }
        XCTAssertEqual(digests, 20)
        connection.close()
        await server.close()
    }
}
