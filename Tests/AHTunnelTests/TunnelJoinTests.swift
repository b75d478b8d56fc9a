import AHTunnel
import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

/// `Tunnel.join` between two real TCP connections on loopback (on different event loops, as
/// at the access point): bytes both ways, half-close carried through, a stalled reader slows
/// the writer down instead of filling memory, and bytes that arrived before the join (in a
/// TunnelPrelude) go first.
final class TunnelJoinTests: XCTestCase {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    override func tearDown() async throws {
        try await group.shutdownGracefully()
    }

    /// Collects what a client channel receives; can start with reads off.
    final class Sink: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var received = ByteBuffer()
        var hasher = SHA256()
        var count = 0
        var inputClosed: EventLoopPromise<Void>
        init(loop: EventLoop) { inputClosed = loop.makePromise() }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            count += buffer.readableBytes
            buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            if received.readableBytes < 1 << 16 { var copy = buffer; received.writeBuffer(&copy) }
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.inputClosed = event { inputClosed.succeed(()) }
        }
        func channelInactive(context: ChannelHandlerContext) { inputClosed.succeed(()) }
    }

    /// A connected pair: the client end (with a Sink, reachable only on the client's loop,
    /// hence NIOLoopBound) and the accepted end (for the tunnel, holding a TunnelPrelude until
    /// joined), accepted on `loop`.
    private func pair(acceptOn loop: EventLoop, clientAutoRead: Bool = true) async throws
        -> (client: Channel, sink: NIOLoopBound<Sink>, inputClosed: EventLoopFuture<Void>, accepted: Channel)
    {
        let acceptedPromise = loop.makePromise(of: Channel.self)
        let server = try await ServerBootstrap(group: loop)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TunnelPrelude())
                    acceptedPromise.succeed(channel)
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let clientLoop = group.next()
        let sinkPromise = clientLoop.makePromise(of: NIOLoopBound<Sink>.self)
        let client = try await ClientBootstrap(group: clientLoop)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelOption(ChannelOptions.autoRead, value: clientAutoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sink = Sink(loop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(sink)
                    sinkPromise.succeed(NIOLoopBound(sink, eventLoop: channel.eventLoop))
                }
            }
            .connect(to: server.localAddress!).get()
        let sink = try await sinkPromise.futureResult.get()
        let inputClosed = try await client.eventLoop.submit { sink.value.inputClosed.futureResult }.get()
        let accepted = try await acceptedPromise.futureResult.get()
        try await server.close()
        return (client, sink, inputClosed, accepted)
    }

    func testBytesBothWaysEarlyBytesFirstAndHalfClose() async throws {
        let loops = (group.next(), group.next())
        let a = try await pair(acceptOn: loops.0)
        let b = try await pair(acceptOn: loops.1)
        // Sent before the join: must arrive first.
        try await a.client.writeAndFlush(a.client.allocator.buffer(string: "early|")).get()
        try await b.client.writeAndFlush(b.client.allocator.buffer(string: "banner|")).get()
        let done = Tunnel.join(a.accepted, b.accepted)
        try await a.client.writeAndFlush(a.client.allocator.buffer(string: "request")).get()
        // Half-close from a: b sees the end of input and can still answer.
        try await a.client.close(mode: .output).get()
        try await b.inputClosed.get()
        let atB = try await b.client.eventLoop.submit { String(buffer: b.sink.value.received) }.get()
        XCTAssertEqual(atB, "early|request")
        try await b.client.writeAndFlush(b.client.allocator.buffer(string: "answer")).get()
        try await b.client.close(mode: .output).get()
        try await a.inputClosed.get()
        let atA = try await a.client.eventLoop.submit { String(buffer: a.sink.value.received) }.get()
        XCTAssertEqual(atA, "banner|answer")
        let summary = try await done.get()
        XCTAssertEqual(summary.bytesForward, "early|request".utf8.count)
        XCTAssertEqual(summary.bytesBackward, "banner|answer".utf8.count)
        XCTAssertTrue(summary.clean, "\(summary)")
    }

    func testStalledReaderStopsTheWriterThenEverythingArrives() async throws {
        let loops = (group.next(), group.next())
        let a = try await pair(acceptOn: loops.0)
        let b = try await pair(acceptOn: loops.1, clientAutoRead: false)
        let done = Tunnel.join(a.accepted, b.accepted)
        // Write 64 MiB while b reads nothing: a's writes must back up in a's own channel
        // (not writable) once the socket buffers and the tunnel's bound are full.
        let total = 64 << 20
        var expected = SHA256()
        let chunk = a.client.allocator.buffer(bytes: (0..<(1 << 16)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        var writes: [EventLoopFuture<Void>] = []
        for _ in 0..<(total / chunk.readableBytes) {
            chunk.withUnsafeReadableBytes { expected.update(bufferPointer: $0) }
            writes.append(a.client.write(chunk))
        }
        a.client.flush()
        // Bytes that left a's own buffer (written into its socket), counted on a's loop.
        let written = NIOLockedValueBox(0)
        for write in writes { write.whenSuccess { written.withLockedValue { $0 += chunk.readableBytes } } }
        // Sample progress (not synchronisation): it must stop, far below the total, while
        // nothing is read at the far end.
        var previous = -1
        var current = 0
        for _ in 0..<50 {
            try await Task.sleep(nanoseconds: 100_000_000)
            current = written.withLockedValue { $0 }
            if current == previous { break }
            previous = current
        }
        XCTAssertEqual(current, previous, "the writer kept going although nobody reads")
        XCTAssertLessThan(current, total / 4, "the tunnel buffered \(current) bytes for a stalled reader")
        XCTAssertFalse(a.client.isWritable)
        let deliveredWhileStalled = try await b.client.eventLoop.submit { b.sink.value.count }.get()
        XCTAssertEqual(deliveredWhileStalled, 0)
        // Resume reading: all of it arrives, intact.
        try await b.client.setOption(ChannelOptions.autoRead, value: true).get()
        b.client.read()
        try await EventLoopFuture.andAllSucceed(writes, on: a.client.eventLoop).get()
        try await a.client.close(mode: .output).get()
        try await b.inputClosed.get()
        let (count, digest) = try await b.client.eventLoop.submit { (b.sink.value.count, b.sink.value.hasher.finalize()) }.get()
        XCTAssertEqual(count, total)
        XCTAssertEqual(Array(digest), Array(expected.finalize()))
        try await b.client.close().get()
        _ = try await done.get()
    }
}
