import CNgtcp2
import Logging
import NIOCore

/// Sits on a UDP channel and routes datagrams to connections by destination connection ID.
/// A server endpoint also accepts new connections: stateless Retry for address validation,
/// bounds on live connections and on handshakes in flight.
///
/// Confinement: lives on the UDP channel's event loop; every method runs there.
final class QUICEndpointHandler: ChannelInboundHandler, QUICConnectionOwner, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    struct ServerHooks {
        var onConnection: @Sendable (QUICConnection) -> Void
        var inboundStreamInitializer: (@Sendable (QUICStreamChannel) -> EventLoopFuture<Void>)?
        var events: AsyncStream<QUICServerEvent>.Continuation?
    }

    let configuration: QUICConfiguration
    let credentials: TLSCredentials
    var logger: Logger
    let server: ServerHooks?
    let statelessResetSecret: [UInt8]
    let segmentationOffload: Bool
    private let retrySecret: [UInt8]

    private(set) var channel: Channel?
    private var routes: [ConnectionID: QUICConnection] = [:]
    private var live: [ObjectIdentifier: QUICConnection] = [:]
    private var handshaking = Set<ObjectIdentifier>()
    /// Connections whose handshake failed and that are waiting out their closing period.
    private var refused = Set<ObjectIdentifier>()
    private var touched: [QUICConnection] = []
    private var touchedSet = Set<ObjectIdentifier>()
    private var refusedSinceLastLog = 0
    /// Client endpoints carry exactly one connection and close the socket when it ends.
    var closesWhenEmpty = false

    init(configuration: QUICConfiguration, credentials: TLSCredentials, logger: Logger, server: ServerHooks?) {
        self.configuration = configuration
        self.credentials = credentials
        self.logger = logger
        self.server = server
        var secret = [UInt8](repeating: 0, count: 32)
        secureRandom(&secret)
        if let configured = configuration.statelessResetSecret, configured.count >= 16 {
            self.statelessResetSecret = configured
        } else {
            self.statelessResetSecret = secret
        }
        secureRandom(&secret)
        self.retrySecret = secret
        self.segmentationOffload = configuration.useSegmentationOffload && System.supportsUDPSegmentationOffload
    }

    var connectionCount: Int { live.count }
    private var idleWaiters: [EventLoopPromise<Void>] = []

    /// Completes once no connection (not even one in its closing period) is left.
    func whenIdle(_ promise: EventLoopPromise<Void>) {
        if live.isEmpty { promise.succeed(()) } else { idleWaiters.append(promise) }
    }
    var handshakesInFlight: Int { handshaking.count }
    var connections: [QUICConnection] { Array(live.values) }

    func handlerAdded(context: ChannelHandlerContext) {
        channel = context.channel
    }

    /// The socket is gone (closed, or its event loop shut down): every connection on it ends
    /// now, so their futures complete and their native state is freed.
    func channelInactive(context: ChannelHandlerContext) {
        for connection in Array(live.values) {
            connection.release(error: connection.closeError ?? .connectionClosed)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let ecn = ecnBits(envelope.metadata)
        if let segment = envelope.metadata?.segmentSize, segment > 0, envelope.data.readableBytes > segment {
            // GRO: the kernel coalesced several datagrams from one sender; split them again.
            var coalesced = envelope.data
            while coalesced.readableBytes > 0 {
                let datagram = coalesced.readSlice(length: min(segment, coalesced.readableBytes))!
                route(datagram, from: envelope.remoteAddress, ecn: ecn)
            }
        } else {
            route(envelope.data, from: envelope.remoteAddress, ecn: ecn)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushTouched()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // UDP errors (ICMP unreachable surfaced on a later call, say) concern one peer at
        // most; QUIC's own loss recovery and idle timeout deal with the consequences.
        logger.debug("UDP socket error", metadata: ["error": "\(error)"])
    }

    private func ecnBits(_ metadata: AddressedEnvelope<ByteBuffer>.Metadata?) -> UInt8 {
        guard let ecn = metadata?.ecnState else { return 0 }
        switch ecn {
        case .transportNotCapable: return 0
        case .transportCapableFlag0: return 2
        case .transportCapableFlag1: return 1
        case .congestionExperienced: return 3
        }
    }

    private func flushTouched() {
        let batch = touched
        touched.removeAll(keepingCapacity: true)
        touchedSet.removeAll(keepingCapacity: true)
        for connection in batch { connection.flushAfterReads() }
    }

    private func markTouched(_ connection: QUICConnection) {
        if touchedSet.insert(ObjectIdentifier(connection)).inserted {
            touched.append(connection)
        }
    }

    // MARK: Routing

    func route(_ datagram: ByteBuffer, from address: SocketAddress, ecn: UInt8) {
        var vc = ngtcp2_version_cid()
        let rc = datagram.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress else { return NGTCP2_ERR_INVALID_ARGUMENT }
            return ngtcp2_pkt_decode_version_cid(&vc, base.assumingMemoryBound(to: UInt8.self), bytes.count, ConnectionID.localLength)
        }
        if rc == NGTCP2_ERR_VERSION_NEGOTIATION {
            if server != nil { sendVersionNegotiation(vc, to: address) }
            return
        }
        guard rc == 0, let dcidPointer = vc.dcid else { return }
        let dcid = ConnectionID(bytes: UnsafeRawBufferPointer(start: dcidPointer, count: vc.dcidlen))
        if let connection = routes[dcid] {
            connection.receive(datagram, from: address, ecn: ecn)
            markTouched(connection)
            return
        }
        let isShortHeader = datagram.getInteger(at: datagram.readerIndex, as: UInt8.self).map { $0 & 0x80 == 0 } ?? false
        guard server != nil else {
            // A client endpoint carries one connection. A stateless reset looks like a
            // short-header packet with a random connection ID; ngtcp2 recognises it by the
            // token at its end, so it must reach the connection.
            if isShortHeader, closesWhenEmpty, live.count == 1, let only = live.values.first {
                only.receive(datagram, from: address, ecn: ecn)
                markTouched(only)
            }
            return
        }
        if isShortHeader {
            // A short-header packet for a connection we do not have: most likely one of a
            // previous run of this server (crashed, restarted). Tell the peer at once.
            sendStatelessReset(dcid: dcid, to: address, receivedSize: datagram.readableBytes)
            return
        }
        accept(datagram, from: address, ecn: ecn)
    }

    private var resetsThisSecond = 0
    private var resetWindowStart = NIODeadline.now()

    /// RFC 9000 §10.3: a packet indistinguishable from a short-header one, ending in the
    /// token we derived for that connection ID. It is smaller than the packet that caused it
    /// (so two endpoints cannot loop), never sent for packets too small to allow that, and
    /// rate-limited.
    private func sendStatelessReset(dcid: ConnectionID, to address: SocketAddress, receivedSize: Int) {
        let tokenLength = Int(NGTCP2_STATELESS_RESET_TOKENLEN)
        let minimumRandom = Int(NGTCP2_MIN_STATELESS_RESET_RANDLEN)
        let randomLength = min(receivedSize - 1 - 1 - tokenLength, 40)
        guard randomLength >= minimumRandom else { return }
        let now = NIODeadline.now()
        if now - resetWindowStart >= .seconds(1) {
            resetWindowStart = now
            resetsThisSecond = 0
        }
        guard resetsThisSecond < configuration.maxStatelessResetsPerSecond else { return }
        resetsThisSecond += 1
        var cid = dcid.ngtcp2
        var token = [UInt8](repeating: 0, count: tokenLength)
        let rc = statelessResetSecret.withUnsafeBufferPointer { secret in
            ngtcp2_crypto_generate_stateless_reset_token(&token, secret.baseAddress, secret.count, &cid)
        }
        guard rc == 0 else { return }
        var random = [UInt8](repeating: 0, count: randomLength)
        secureRandom(&random)
        sendStateless(to: address) { dest, capacity in
            ngtcp2_pkt_write_stateless_reset(dest, capacity, token, random, random.count)
        }
    }

    private func accept(_ datagram: ByteBuffer, from address: SocketAddress, ecn: UInt8) {
        var hd = ngtcp2_pkt_hd()
        let rc = datagram.withUnsafeReadableBytes { bytes in
            ngtcp2_accept(&hd, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        guard rc == 0 else { return }  // not an acceptable first packet: drop silently
        if live.count >= configuration.maxConnections || handshaking.count >= configuration.maxHandshakesInFlight {
            refuse(hd, to: address, code: UInt64(NGTCP2_CONNECTION_REFUSED), reason: "server busy")
            refusedSinceLastLog += 1
            if refusedSinceLastLog == 1 || refusedSinceLastLog % 1000 == 0 {
                logger.warning("refusing new connections: limit reached", metadata: [
                    "connections": "\(live.count)", "handshakesInFlight": "\(handshaking.count)",
                    "refused": "\(refusedSinceLastLog)"])
            }
            return
        }
        var originalDCID: ngtcp2_cid?
        if configuration.requireRetry {
            guard hd.token.len > 0, hd.token.base.pointee == UInt8(NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) else {
                sendRetry(hd, to: address)
                return
            }
            var odcid = ngtcp2_cid()
            let valid = address.withSockAddr { sa, len in
                retrySecret.withUnsafeBufferPointer { secret in
                    ngtcp2_crypto_verify_retry_token(&odcid, hd.token.base, hd.token.len, secret.baseAddress, secret.count,
                                                     hd.version, sa, ngtcp2_socklen(len), &hd.dcid,
                                                     10 * UInt64(NGTCP2_SECONDS), QUICClock.now())
                }
            }
            guard valid == 0 else {
                refuse(hd, to: address, code: UInt64(NGTCP2_INVALID_TOKEN), reason: "invalid retry token")
                return
            }
            originalDCID = odcid
        }
        guard let channel, let local = channel.localAddress, let server else { return }
        let connection = QUICConnection(role: .server, channel: channel, owner: self, local: local, remote: address,
                                        configuration: configuration, credentials: credentials, logger: logger)
        connection.inboundStreamInitializer = server.inboundStreamInitializer
        do {
            try connection.startServer(header: hd, originalDCID: originalDCID, resetSecret: statelessResetSecret)
        } catch {
            logger.error("could not create connection state", metadata: ["error": "\(error)"])
            connection.release(error: .connectionClosed)
            return
        }
        let id = ObjectIdentifier(connection)
        live[id] = connection
        handshaking.insert(id)
        connection.receive(datagram, from: address, ecn: ecn)
        markTouched(connection)
    }

    private func sendRetry(_ header: ngtcp2_pkt_hd, to address: SocketAddress) {
        var hd = header
        var retrySCID = ConnectionID.random().ngtcp2
        var token = [UInt8](repeating: 0, count: 256)
        let tokenLength = address.withSockAddr { sa, len in
            retrySecret.withUnsafeBufferPointer { secret in
                ngtcp2_crypto_generate_retry_token(&token, secret.baseAddress, secret.count, hd.version, sa,
                                                   ngtcp2_socklen(len), &retrySCID, &hd.dcid, QUICClock.now())
            }
        }
        guard tokenLength > 0 else { return }
        sendStateless(to: address) { dest, capacity in
            ngtcp2_crypto_write_retry(dest, capacity, hd.version, &hd.scid, &retrySCID, &hd.dcid, token, Int(tokenLength))
        }
    }

    private func refuse(_ header: ngtcp2_pkt_hd, to address: SocketAddress, code: UInt64, reason: String) {
        var hd = header
        let reasonBytes = Array(reason.utf8)
        sendStateless(to: address) { dest, capacity in
            ngtcp2_crypto_write_connection_close(dest, capacity, hd.version, &hd.scid, &hd.dcid, code,
                                                 reasonBytes, reasonBytes.count)
        }
    }

    private func sendVersionNegotiation(_ vc: ngtcp2_version_cid, to address: SocketAddress) {
        var versions: [UInt32] = [NGTCP2_PROTO_VER_V1]
        var randomByte: UInt8 = 0
        secureRandom(&randomByte, 1)
        sendStateless(to: address) { dest, capacity in
            ngtcp2_pkt_write_version_negotiation(dest, capacity, randomByte, vc.scid, vc.scidlen, vc.dcid, vc.dcidlen,
                                                 &versions, versions.count)
        }
    }

    private func sendStateless(to address: SocketAddress, _ write: (UnsafeMutablePointer<UInt8>, Int) -> ngtcp2_ssize) {
        guard let channel else { return }
        var buffer = channel.allocator.buffer(capacity: 1500)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1500) { dest in
            let n = write(dest.baseAddress!.assumingMemoryBound(to: UInt8.self), dest.count)
            return n > 0 ? Int(n) : 0
        }
        guard buffer.readableBytes > 0 else { return }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
    }

    // MARK: QUICConnectionOwner

    func register(_ id: ConnectionID, for connection: QUICConnection) {
        routes[id] = connection
    }

    func unregister(_ id: ConnectionID) {
        routes.removeValue(forKey: id)
    }

    func adopt(_ connection: QUICConnection) {
        live[ObjectIdentifier(connection)] = connection
        handshaking.insert(ObjectIdentifier(connection))
    }

    func handshakeCompleted(_ connection: QUICConnection) {
        handshaking.remove(ObjectIdentifier(connection))
        if let peer = connection.peerIdentity {
            server?.events?.yield(.connected(peer: peer, remote: connection.remoteAddress))
        }
        server?.onConnection(connection)
    }

    func handshakeFailed(_ connection: QUICConnection) {
        let id = ObjectIdentifier(connection)
        guard handshaking.remove(id) != nil else { return }
        refused.insert(id)
        let reason = connection.closeError ?? .connectionClosed
        server?.events?.yield(.refused(reason: reason, remote: connection.remoteAddress))
    }

    func connectionReleased(_ connection: QUICConnection) {
        let id = ObjectIdentifier(connection)
        let reason = connection.closeError ?? .connectionClosed
        if refused.remove(id) != nil {
            // Already reported as refused.
        } else if handshaking.remove(id) != nil {
            server?.events?.yield(.refused(reason: reason, remote: connection.remoteAddress))
        } else if live[id] != nil {
            server?.events?.yield(.closed(peer: connection.peerIdentity, reason: reason))
        }
        live.removeValue(forKey: id)
        if live.isEmpty {
            let waiting = idleWaiters
            idleWaiters.removeAll()
            waiting.forEach { $0.succeed(()) }
        }
        if closesWhenEmpty && live.isEmpty {
            channel?.close(promise: nil)
        }
    }
}
