import CNgtcp2
import NIOCore

extension QUICConnection {
    /// Application-requested close: send CONNECTION_CLOSE with the code and reason, then
    /// wait out the closing period (3 PTO) answering stray packets with the same close.
    func closeLocally(_ info: CloseInfo) {
        guard state == .handshaking || state == .established else { return }
        logger.debug("closing connection", metadata: ["code": "\(info.code)", "reason": "\(info.reason)"])
        closeInfo = info
        writeConnectionClose(error: .closedLocally(info)) { ccerr, bytes in
            ngtcp2_connection_close_error_set_application_error(&ccerr, info.code, bytes.baseAddress, bytes.count)
        }
    }

    /// Closes because of a transport or handshake error, telling the peer why.
    func closeWithTransportError(_ error: QUICError, _ fill: (inout ngtcp2_connection_close_error, UnsafeBufferPointer<UInt8>) -> Void) {
        guard state == .handshaking || state == .established else { return }
        switch error {
        case .handshakeFailed, .peerRefused:
            logger.warning("handshake refused", metadata: ["reason": "\(error)"])
        default:
            logger.warning("closing connection on error", metadata: ["error": "\(error)"])
        }
        writeConnectionClose(error: error, fill)
    }

    private func writeConnectionClose(error: QUICError, _ fill: (inout ngtcp2_connection_close_error, UnsafeBufferPointer<UInt8>) -> Void) {
        closeError = error
        reportHandshakeFailureIfHandshaking()
        guard let conn else { release(error: error); return }
        var reasonText = ""
        switch error {
        case .closedLocally(let info): reasonText = info.reason
        case .handshakeFailed(let r), .peerRefused(let r): reasonText = r
        default: reasonText = "\(error)"
        }
        // The reason phrase travels in one packet; keep it well inside a datagram.
        let reason = Array(reasonText.utf8.prefix(512))
        var ccerr = ngtcp2_connection_close_error()
        ngtcp2_connection_close_error_default(&ccerr)
        reason.withUnsafeBufferPointer { fill(&ccerr, $0) }
        if ngtcp2_conn_is_in_closing_period(conn) != 0 || ngtcp2_conn_is_in_draining_period(conn) != 0 {
            release(error: error)
            return
        }
        var packet = channel.allocator.buffer(capacity: configuration.maxUDPPayloadSize)
        var written: ngtcp2_ssize = 0
        packet.writeWithUnsafeMutableBytes(minimumWritableBytes: configuration.maxUDPPayloadSize) { dest in
            written = reason.withUnsafeBufferPointer { reasonBytes in
                ccerr.reason = UnsafeMutablePointer(mutating: reasonBytes.baseAddress)
                ccerr.reasonlen = reasonBytes.count
                return ah_ngtcp2_conn_write_connection_close(conn, &path, dest.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                             configuration.maxUDPPayloadSize, &ccerr, QUICClock.now())
            }
            return written > 0 ? Int(written) : 0
        }
        guard written > 0 else {
            release(error: error)
            return
        }
        state = .closing
        closingPacket = packet
        sendRaw(packet)
        failStreams()
        startClosingPeriodTimer()
    }

    func resendClosingPacket() {
        if let closingPacket { sendRaw(closingPacket) }
    }

    /// The peer sent CONNECTION_CLOSE.
    func enterDraining() {
        guard let conn else { return }
        var ccerr = ngtcp2_connection_close_error()
        ngtcp2_conn_get_connection_close_error(conn, &ccerr)
        let reason = ccerr.reason.map { String(decoding: UnsafeBufferPointer(start: $0, count: ccerr.reasonlen), as: UTF8.self) } ?? ""
        let kind: CloseInfo.Kind = ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION ? .application : .transport
        let info = receivedStatelessReset
            ? CloseInfo(kind: .transport, code: 0, reason: "stateless reset: the peer no longer has this connection (it restarted or lost its state)")
            : CloseInfo(kind: kind, code: ccerr.error_code, reason: reason)
        closeInfo = info
        closeError = .closedByPeer(info)
        if kind == .transport && info.code != 0 {
            logger.warning("peer closed the connection with an error", metadata: ["close": "\(info)"])
        } else {
            logger.debug("peer closed the connection", metadata: ["close": "\(info)"])
        }
        reportHandshakeFailureIfHandshaking()
        state = .draining
        failStreams()
        startClosingPeriodTimer()
    }

    /// A handshake that ends is reported at once, not after the closing period, so callers
    /// waiting in `connect()` (and server event consumers) learn the reason promptly.
    private func reportHandshakeFailureIfHandshaking() {
        guard state == .handshaking else { return }
        let error = closeError ?? .connectionClosed
        handshakePromise.fail(error)
        owner.handshakeFailed(self)
    }

    private func startClosingPeriodTimer() {
        expiryTask?.cancel()
        expiryTask = nil
        let pto = conn.map { ngtcp2_conn_get_pto($0) } ?? 100_000_000
        let period = TimeAmount.nanoseconds(Int64(min(pto * 3, 3_000_000_000)))
        expiryTask = eventLoop.scheduleTask(in: period) { [self] in
            expiryTask = nil
            release(error: closeError ?? .connectionClosed)
        }
    }

    private func failStreams() {
        let all = Array(streams.values)
        streams.removeAll()
        sendQueue.removeAll()
        for stream in all {
            stream.connectionClosed()
        }
    }

    /// Frees every native resource exactly once and tells everyone waiting.
    func release(error: QUICError) {
        guard state != .closed else { return }
        logger.debug("connection released", metadata: ["error": "\(closeError ?? error)"])
        if closeError == nil { closeError = error }
        reportHandshakeFailureIfHandshaking()
        state = .closed
        expiryTask?.cancel()
        expiryTask = nil
        failStreams()
        for id in registeredIDs { owner.unregister(id) }
        registeredIDs.removeAll()
        if let conn { ngtcp2_conn_del(conn) }
        conn = nil
        if let tls { gnutls_deinit(tls) }
        tls = nil
        let finalError = closeError ?? error
        failPendingStreamOpens(finalError)
        handshakePromise.fail(finalError)
        closePromise.succeed(())
        owner.connectionReleased(self)
    }
}
