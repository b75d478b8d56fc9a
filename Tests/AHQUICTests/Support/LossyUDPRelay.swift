import NIOCore
import NIOPosix

/// A UDP relay between one client and one server that drops a fixed fraction of datagrams
/// in each direction. The kernel here has no netem, so loss is made in user space; drops
/// come from a seeded generator so a failing run can be replayed.
final class LossyUDPRelay: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let server: SocketAddress
    private let lossRate: Double
    private var client: SocketAddress?
    private var random: UInt64
    private(set) var forwarded = [0, 0]  // to server, to client
    private(set) var dropped = [0, 0]
    /// The largest datagram seen in each direction.
    private(set) var largest = [0, 0]
    /// The size of the client's first datagram (its Initial), 0 before it came.
    private(set) var firstFromClient = 0

    init(server: SocketAddress, lossRate: Double, seed: UInt64) {
        self.server = server
        self.lossRate = lossRate
        self.random = seed | 1
    }

    static func start(server: SocketAddress, lossRate: Double, seed: UInt64, group: EventLoopGroup) async throws -> (Channel, LossyUDPRelay) {
        let relay = LossyUDPRelay(server: server, lossRate: lossRate, seed: seed)
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            // Any UDP datagram fits (peers on loopback send up to 64 KiB ones).
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { $0.pipeline.addHandler(relay) }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, relay)
    }

    private func nextUnit() -> Double {
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return Double(random >> 11) / Double(1 << 53)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let toServer = envelope.remoteAddress != server
        if toServer { client = envelope.remoteAddress }
        let direction = toServer ? 0 : 1
        largest[direction] = max(largest[direction], envelope.data.readableBytes)
        if toServer && firstFromClient == 0 { firstFromClient = envelope.data.readableBytes }
        if nextUnit() < lossRate {
            dropped[direction] += 1
            return
        }
        guard let destination = toServer ? server : client else { return }
        forwarded[direction] += 1
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: destination, data: envelope.data)), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}
