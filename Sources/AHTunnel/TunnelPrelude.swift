import NIOCore

/// Holds the bytes that arrive on a channel between the end of its handshake (an HTTP CONNECT
/// head, an OpenTCP exchange) and the moment the tunnel is joined, so none is lost: put it in
/// the pipeline when the handshake handler leaves; `Tunnel.join` takes its bytes and removes it.
/// Reading pauses while it holds more than `limit` bytes.
public final class TunnelPrelude: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = ByteBuffer

    public static let limit = 1 << 20
    private var held: [ByteBuffer]
    private var heldBytes: Int
    private var readHeld = false
    private var inputEnded = false

    /// - Parameter inputEnded: the peer already finished sending before the prelude took over.
    public init(initial: [ByteBuffer] = [], inputEnded: Bool = false) {
        self.inputEnded = inputEnded
        held = initial.filter { $0.readableBytes > 0 }
        heldBytes = held.reduce(0) { $0 + $1.readableBytes }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        heldBytes += buffer.readableBytes
        held.append(buffer)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputEnded = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func read(context: ChannelHandlerContext) {
        if heldBytes < Self.limit { context.read() } else { readHeld = true }
    }

    /// Everything held, and whether the input already ended; leaves the pipeline.
    func takeAll(context: ChannelHandlerContext) -> (bytes: [ByteBuffer], inputEnded: Bool) {
        let result = (held, inputEnded)
        held = []
        heldBytes = 0
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        return result
    }
}
