import CNgtcp2
import NIOConcurrencyHelpers
import NIOCore

/// Outbound events a stream channel understands (`channel.triggerUserOutboundEvent`).
public enum QUICStreamEvent: Sendable {
    /// Abandon sending: RESET_STREAM with this application error code.
    case reset(applicationErrorCode: UInt64)
    /// Ask the peer to stop sending: STOP_SENDING with this code.
    case stopSending(applicationErrorCode: UInt64)
}

/// One QUIC stream as a NIO child channel of the UDP channel, the way swift-nio-http2
/// exposes HTTP/2 streams.
///
/// - Inbound: `ByteBuffer`s. Flow-control credit goes back to the peer only when data is
///   delivered to the pipeline, and data is delivered only on `read()`. With `autoRead`
///   off (NIOAsyncChannel turns reads off when its buffer is full) the peer is stopped by
///   flow control and nothing buffers without bound. The peer's FIN arrives as
///   `ChannelEvent.inputClosed` (half-closure is on by default).
/// - Outbound: `ByteBuffer`s. `close(mode: .output)` sends FIN after queued data.
///   `isWritable` follows the write-buffer watermarks over queued-but-unsent bytes.
/// - RESET_STREAM / STOP_SENDING from the peer arrive as `QUICStreamError` via `errorCaught`.
///
/// Confinement: all mutable state is touched only on `eventLoop`, except `isWritable` and
/// `isActive`, which are read from anywhere and so live behind a lock.
public final class QUICStreamChannel: Channel, ChannelCore, @unchecked Sendable {
    public let streamID: Int64
    public let connection: QUICConnection
    public let eventLoop: EventLoop
    public let isLocallyInitiated: Bool
    public var isBidirectional: Bool { ngtcp2_is_bidi_stream(streamID) != 0 }

    private var _pipeline: ChannelPipeline!
    private let closePromise: EventLoopPromise<Void>
    private let flags = NIOLockedValueBox((writable: true, active: false))

    // Options
    private var autoRead = true
    private var allowRemoteHalfClosure = true
    private var waterMark: ChannelOptions.Types.WriteBufferWaterMark

    // Inbound state
    private var pendingReads = CircularBuffer<ByteBuffer>()
    private var pendingReadBytes = 0
    private var pendingErrors: [QUICStreamError] = []
    private var finReceived = false
    private var inputClosedDelivered = false
    private var inputShutByUs = false
    private var readRequested = false

    // Outbound state
    private var sendBuffer = StreamSendBuffer()
    private var unflushed: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var unflushedBytes = 0
    private(set) var finQueued = false
    private var finSent = false
    private var finPromise: EventLoopPromise<Void>?
    private var outputDead = false
    private var resetByUs = false
    private var resetByPeerSeen = false
    private var peerStoppedSending = false

    // Lifecycle
    private var activated = false
    private var channelClosed = false
    private var transportIsClosed = false

    // Connection bookkeeping
    var isInSendQueue = false
    var isFlowControlBlocked = false
    var hasPendingInboundEvent = false

    init(connection: QUICConnection, streamID: Int64, locallyInitiated: Bool) {
        self.connection = connection
        self.streamID = streamID
        self.eventLoop = connection.eventLoop
        self.isLocallyInitiated = locallyInitiated
        self.closePromise = connection.eventLoop.makePromise()
        let high = connection.configuration.streamWriteBufferHigh
        let low = min(connection.configuration.streamWriteBufferLow, high)
        self.waterMark = .init(low: low, high: high)
        self._pipeline = ChannelPipeline(channel: self)
        if !isBidirectional {
            // A unidirectional stream has only one direction; the other is closed from the start.
            if locallyInitiated { finReceived = true; inputClosedDelivered = true } else { finSent = true; outputDead = true }
        }
    }

    /// Outbound bytes held for this stream: queued, unsent, and sent but not yet
    /// acknowledged (ngtcp2 may need them for retransmission). Event loop only.
    public var bufferedOutboundBytes: Int { sendBuffer.heldBytes + unflushedBytes }
    /// Inbound bytes received but not yet delivered to the pipeline. Event loop only.
    public var bufferedInboundBytes: Int { pendingReadBytes }

    // MARK: Channel

    public var pipeline: ChannelPipeline { _pipeline }
    public var allocator: ByteBufferAllocator { connection.channel.allocator }
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    public var localAddress: SocketAddress? { connection.localAddress }
    public var remoteAddress: SocketAddress? { connection.remoteAddress }
    public var parent: Channel? { connection.channel }
    public var isWritable: Bool { flags.withLockedValue { $0.writable } }
    public var isActive: Bool { flags.withLockedValue { $0.active } }
    public var _channelCore: ChannelCore { self }

    public func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try setOption0(option, value: value) }
        }
        return eventLoop.submit { try self.setOption0(option, value: value) }
    }

    public func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        if eventLoop.inEventLoop {
            return eventLoop.makeCompletedFuture { try getOption0(option) }
        }
        return eventLoop.submit { try self.getOption0(option) }
    }

    private func setOption0<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption:
            let enable = value as! Bool
            let wasOff = !autoRead
            autoRead = enable
            if enable && wasOff { read0() }
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as! Bool
        case _ as ChannelOptions.Types.WriteBufferWaterMarkOption:
            waterMark = value as! ChannelOptions.Types.WriteBufferWaterMark
            updateWritability()
        default:
            throw ChannelError.operationUnsupported
        }
    }

    private func getOption0<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case _ as ChannelOptions.Types.AutoReadOption: return autoRead as! Option.Value
        case _ as ChannelOptions.Types.AllowRemoteHalfClosureOption: return allowRemoteHalfClosure as! Option.Value
        case _ as ChannelOptions.Types.WriteBufferWaterMarkOption: return waterMark as! Option.Value
        default: throw ChannelError.operationUnsupported
        }
    }

    // MARK: ChannelCore

    public func localAddress0() throws -> SocketAddress { connection.localAddress }
    public func remoteAddress0() throws -> SocketAddress { connection.remoteAddress }
    public func register0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    public func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed(()) }
    public func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    public func channelRead0(_ data: NIOAny) {}
    public func errorCaught0(error: Error) {}

    public func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !channelClosed else { promise?.fail(ChannelError.ioOnClosedChannel); return }
        guard !finQueued, !outputDead else { promise?.fail(QUICStreamError.outputClosed); return }
        let buffer: ByteBuffer
        if let b = tryUnwrapData(data, as: ByteBuffer.self) {
            buffer = b
        } else if let io = tryUnwrapData(data, as: IOData.self), case .byteBuffer(let b) = io {
            buffer = b
        } else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        unflushed.append((buffer, promise))
        unflushedBytes += buffer.readableBytes
        updateWritability()
    }

    public func flush0() {
        guard !unflushed.isEmpty else { return }
        for (buffer, promise) in unflushed {
            sendBuffer.append(buffer, promise: promise)
        }
        unflushed.removeAll(keepingCapacity: true)
        unflushedBytes = 0
        connection.enqueueForSending(self)
    }

    public func read0() {
        guard !channelClosed else { return }
        readRequested = true
        if !pendingReads.isEmpty || (finReceived && !inputClosedDelivered) {
            deliverInboundEvents()
        }
    }

    public func close0(error: Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !channelClosed else { promise?.fail(ChannelError.alreadyClosed); return }
        switch mode {
        case .output:
            queueFIN(promise: promise)
        case .input:
            shutDownInput(applicationErrorCode: 0)
            promise?.succeed(())
        case .all:
            // Graceful: data already flushed still goes out, followed by FIN. Reading stops.
            flush0()
            if !finQueued && !outputDead { queueFIN(promise: nil) }
            if !(finReceived && pendingReads.isEmpty) { shutDownInput(applicationErrorCode: 0) }
            closeChannel(error: nil)
            promise?.succeed(())
        }
    }

    public func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? QUICStreamEvent else {
            promise?.fail(ChannelError.operationUnsupported)
            return
        }
        switch event {
        case .reset(let code):
            resetOutput(applicationErrorCode: code)
        case .stopSending(let code):
            shutDownInput(applicationErrorCode: code)
        }
        promise?.succeed(())
    }

    // MARK: Lifecycle

    /// Called once the initializer has run: the channel becomes active and starts reading.
    func activate() {
        guard !activated, !channelClosed else { return }
        activated = true
        flags.withLockedValue { $0.active = true }
        pipeline.fireChannelRegistered()
        pipeline.fireChannelActive()
        if autoRead { pipeline.read() }
        deliverInboundEvents()
    }

    private func closeChannel(error: Error?) {
        guard !channelClosed else { return }
        channelClosed = true
        let wasActive = flags.withLockedValue { state -> Bool in
            let was = state.active
            state.active = false
            return was
        }
        for (_, promise) in unflushed { promise?.fail(ChannelError.ioOnClosedChannel) }
        unflushed.removeAll()
        // Unread data is dropped; its credit goes back so the connection window is not lost.
        discardPendingReads()
        if let error { pipeline.fireErrorCaught(error) }
        if wasActive { pipeline.fireChannelInactive() }
        if activated { pipeline.fireChannelUnregistered() }
        eventLoop.execute { [self] in
            removeHandlers(pipeline: pipeline)  // break handler ↔ channel cycles
            closePromise.succeed(())
        }
    }

    private func discardPendingReads() {
        let bytes = pendingReadBytes
        pendingReads.removeAll()
        pendingReadBytes = 0
        connection.creditConsumed(streamID: streamID, bytes: bytes)
    }

    // MARK: Outbound

    private func queueFIN(promise: EventLoopPromise<Void>?) {
        guard !finQueued, !outputDead else {
            if finSent { promise?.succeed(()) } else { promise?.fail(QUICStreamError.outputClosed) }
            return
        }
        flush0()
        finQueued = true
        finPromise = promise
        connection.enqueueForSending(self)
    }

    private func resetOutput(applicationErrorCode code: UInt64) {
        guard !outputDead else { return }
        outputDead = true
        resetByUs = true
        if let conn = connection.conn {
            _ = ngtcp2_conn_shutdown_stream_write(conn, streamID, code)
            connection.scheduleWrite()
        }
        failOutbound(QUICStreamError.outputClosed)
    }

    private func shutDownInput(applicationErrorCode code: UInt64) {
        guard !inputShutByUs, !(finReceived && inputClosedDelivered) else { return }
        inputShutByUs = true
        if let conn = connection.conn {
            _ = ngtcp2_conn_shutdown_stream_read(conn, streamID, code)
            connection.scheduleWrite()
        }
        discardPendingReads()
    }

    private func failOutbound(_ error: Error) {
        for promise in sendBuffer.abandon() { promise.fail(error) }
        for (_, promise) in unflushed { promise?.fail(error) }
        unflushed.removeAll()
        unflushedBytes = 0
        finPromise?.fail(error)
        finPromise = nil
        updateWritability()
    }

    var hasDataToSend: Bool {
        !outputDead && (sendBuffer.hasUnsentData || (finQueued && !finSent))
    }

    func fillUnsent(_ vecs: inout [ngtcp2_vec]) -> Int {
        let (count, coversAll) = sendBuffer.fillUnsent(&vecs)
        lastFillCoveredAll = coversAll
        return count
    }
    private var lastFillCoveredAll = false

    func unsentCoveredBy(vecCount: Int) -> Bool { lastFillCoveredAll }

    /// ngtcp2 took `count` bytes (and the FIN, if it was offered with the last of the data).
    func sent(_ count: Int, finIncluded: Bool) {
        if count > 0 {
            for promise in sendBuffer.advance(by: count) { promise.succeed(()) }
            updateWritability()
        }
        if finIncluded && !sendBuffer.hasUnsentData && !finSent {
            finSent = true
            finPromise?.succeed(())
            finPromise = nil
        }
    }

    func acknowledged(upTo offset: UInt64) {
        sendBuffer.acknowledged(upTo: offset)
    }

    /// ngtcp2 refused writes on this stream: the peer sent STOP_SENDING (ngtcp2 answered
    /// with RESET_STREAM for us). The code arrives with `transportClosed`.
    func outputShutByTransport() {
        guard !outputDead else { return }
        peerStoppedSending = true
        outputDead = true
        failOutbound(QUICStreamError.outputClosed)
    }

    private func updateWritability() {
        let buffered = sendBuffer.unsentBytes + unflushedBytes
        let current = flags.withLockedValue { $0.writable }
        if current && buffered > waterMark.high && !outputDead {
            flags.withLockedValue { $0.writable = false }
            if activated && !channelClosed { pipeline.fireChannelWritabilityChanged() }
        } else if !current && (buffered < waterMark.low || outputDead) {
            flags.withLockedValue { $0.writable = true }
            if activated && !channelClosed { pipeline.fireChannelWritabilityChanged() }
        }
    }

    // MARK: Inbound (called by the connection)

    /// Data from ngtcp2 (valid only during the call, so it is copied). Coalesced into
    /// 16 KiB+ buffers to keep allocations per packet low.
    func received(_ data: UnsafeRawBufferPointer, fin: Bool) {
        if channelClosed || inputShutByUs {
            connection.creditConsumed(streamID: streamID, bytes: data.count)
            return
        }
        if data.count > 0 {
            if pendingReads.isEmpty || pendingReads.last!.writableBytes < data.count {
                var buffer = allocator.buffer(capacity: max(data.count, 16 * 1024))
                buffer.writeBytes(data)
                pendingReads.append(buffer)
            } else {
                pendingReads[pendingReads.index(before: pendingReads.endIndex)].writeBytes(data)
            }
            pendingReadBytes += data.count
        }
        if fin { finReceived = true }
    }

    func resetByPeer(_ code: UInt64) {
        resetByPeerSeen = true
        pendingErrors.append(.resetByPeer(applicationErrorCode: code))
        // The peer abandoned the data; what it sent is no longer meaningful.
        if !channelClosed { discardPendingReads() }
        finReceived = true
    }

    /// ngtcp2 closed the stream: both directions finished (or were reset) and acknowledged.
    /// `applicationErrorCode` is set when a RESET_STREAM or STOP_SENDING was involved.
    func transportClosed(applicationErrorCode: UInt64?) {
        transportIsClosed = true
        if let code = applicationErrorCode, !resetByUs, !resetByPeerSeen, peerStoppedSending || !finSent {
            // Our output ended without our FIN or reset: the peer sent STOP_SENDING.
            pendingErrors.append(.stopSendingByPeer(applicationErrorCode: code))
        }
        for promise in sendBuffer.releaseAll() { promise.fail(QUICStreamError.outputClosed) }
        finReceived = true
    }

    /// The whole connection went away.
    func connectionClosed() {
        transportIsClosed = true
        for promise in sendBuffer.releaseAll() { promise.fail(QUICStreamError.connectionClosed) }
        finPromise?.fail(QUICStreamError.connectionClosed)
        finPromise = nil
        outputDead = true
        if activated {
            if !(finReceived && pendingReads.isEmpty && finSent) {
                pendingErrors.append(.connectionClosed)
            }
            finReceived = true
            deliverInboundEvents()
        }
        closeChannel(error: nil)
    }

    /// Hands buffered data, errors and FIN to the pipeline as far as reads allow.
    func deliverInboundEvents() {
        guard activated, !channelClosed else { return }
        if !pendingErrors.isEmpty {
            let errors = pendingErrors
            pendingErrors.removeAll()
            for error in errors { pipeline.fireErrorCaught(error) }
        }
        if readRequested && !pendingReads.isEmpty {
            readRequested = false
            let delivered = pendingReadBytes
            let buffers = pendingReads
            pendingReads.removeAll()
            pendingReadBytes = 0
            // The channel's own loop: the synchronous pipeline entry point for channel implementations.
            for buffer in buffers { pipeline.syncOperations.fireChannelRead(NIOAny(buffer)) }
            pipeline.fireChannelReadComplete()
            connection.creditConsumed(streamID: streamID, bytes: delivered)
            if channelClosed { return }
            if autoRead { pipeline.read() }
        }
        if finReceived && pendingReads.isEmpty && !inputClosedDelivered && !channelClosed {
            inputClosedDelivered = true
            if allowRemoteHalfClosure {
                pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            } else {
                close(promise: nil)
                return
            }
        }
        if transportIsClosed && inputClosedDelivered && pendingReads.isEmpty && !channelClosed {
            closeChannel(error: nil)
        }
    }
}
