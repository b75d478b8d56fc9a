import AHQUIC
import NIOCore

/// Writes `count` pattern bytes (seed-specific) as fast as writability allows, then FIN.
/// Starts when the stream becomes active, or — as a download server — when the peer
/// finishes its request. Optionally publishes how much it has handed to the stream, so a
/// test can watch a sender stall.
final class PatternWriter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Start { case whenActive, whenPeerFinishes }

    private let count: Int
    private let pattern: PatternSource
    private let start: Start
    private let progress: ManagedCounter?
    private var started = false
    private var sent = 0
    private var finished = false

    init(count: Int, seed: Int, start: Start = .whenActive, progress: ManagedCounter? = nil) {
        self.count = count
        self.pattern = PatternSource(seed: seed)
        self.start = start
        self.progress = progress
    }

    func channelActive(context: ChannelHandlerContext) {
        if start == .whenActive { started = true; pump(context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event, start == .whenPeerFinishes {
            started = true
            pump(context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if started && context.channel.isWritable { pump(context) }
    }

    private func pump(_ context: ChannelHandlerContext) {
        guard !finished else { return }
        while sent < count && context.channel.isWritable {
            let chunk = pattern.chunk(at: sent, maxLength: count - sent)
            sent += chunk.readableBytes
            context.write(wrapOutboundOut(chunk), promise: nil)
        }
        progress?.set(sent)
        context.flush()
        if sent == count {
            finished = true
            context.close(mode: .output, promise: nil)
        }
    }
}
