import NIOCore

/// Bounds what an unauthenticated client can make the server hold after a CONNECT head.
///
/// Between the head and the tunnel (token check, ACL, the executor's answer) bytes the client
/// sends are kept for the tunnel by the HTTP decoder. The connection handler stops reading at
/// the head, but one read cycle may still bring several buffers; this handler sits in front of
/// the decoder and, once armed, passes on at most `limit` bytes and drops the rest, noting the
/// overflow so the CONNECT is refused rather than joined with a hole in its byte stream.
final class PreTunnelByteLimit: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let limit: Int
    private var armed = false
    private var passed = 0
    private(set) var overflowed = false

    init(limit: Int) {
        self.limit = limit
    }

    /// From now on at most `limit` more bytes reach the decoder.
    func arm() {
        armed = true
        passed = 0
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard armed else {
            context.fireChannelRead(data)
            return
        }
        var buffer = unwrapInboundIn(data)
        let room = limit - passed
        if buffer.readableBytes > room {
            overflowed = true
            guard room > 0, let kept = buffer.readSlice(length: room) else { return }
            buffer = kept
        }
        passed += buffer.readableBytes
        context.fireChannelRead(wrapInboundOut(buffer))
    }
}
