import AHQUIC
import Crypto
import NIOCore

/// Sends `total` pattern bytes (seed-specific), finishes, and hashes both what it sent and
/// what came back; the result is the pair of SHA-256 digests and the byte counts.
final class ChecksumEchoClient: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Result: Sendable {
        let sentDigest: SHA256.Digest
        let receivedDigest: SHA256.Digest
        let sent: Int
        let received: Int
    }

    private let total: Int
    private let pattern: PatternSource
    private let promise: EventLoopPromise<Result>
    private var sentHash = SHA256()
    private var receivedHash = SHA256()
    private var sent = 0
    private var received = 0

    init(bytes: Int, seed: Int, promise: EventLoopPromise<Result>) {
        total = bytes
        pattern = PatternSource(seed: seed)
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) { pump(context) }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump(context) }
    }

    private func pump(_ context: ChannelHandlerContext) {
        guard sent < total else { return }
        while sent < total && context.channel.isWritable {
            let chunk = pattern.chunk(at: sent, maxLength: total - sent)
            chunk.withUnsafeReadableBytes { sentHash.update(bufferPointer: $0) }
            sent += chunk.readableBytes
            context.write(wrapOutboundOut(chunk), promise: nil)
        }
        context.flush()
        if sent == total { context.close(mode: .output, promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { receivedHash.update(bufferPointer: $0) }
        received += buffer.readableBytes
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            promise.succeed(Result(sentDigest: sentHash.finalize(), receivedDigest: receivedHash.finalize(),
                                   sent: sent, received: received))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }
}

/// Reads a stream to its FIN, hashing everything; optionally finishes its own side first
/// (a download request).
final class HashingSink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<(Int, SHA256.Digest)>
    private let finishOutputOnActive: Bool
    private var hash = SHA256()
    private var count = 0

    init(finishOutputOnActive: Bool, promise: EventLoopPromise<(Int, SHA256.Digest)>) {
        self.finishOutputOnActive = finishOutputOnActive
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        if finishOutputOnActive { context.close(mode: .output, promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
        count += buffer.readableBytes
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            promise.succeed((count, hash.finalize()))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }
}

/// SHA-256 of the first `count` bytes of the pattern with `seed`, computed independently of
/// the transport.
func patternDigest(seed: Int, count: Int) -> SHA256.Digest {
    let pattern = PatternSource(seed: seed)
    var hash = SHA256()
    var offset = 0
    while offset < count {
        let chunk = pattern.chunk(at: offset, maxLength: count - offset)
        chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
        offset += chunk.readableBytes
    }
    return hash.finalize()
}
