import CNgtcp2
import NIOCore

extension QUICConnection {
    /// Feeds one received datagram to ngtcp2. The caller runs `flushAfterReads()` once per
    /// batch of datagrams, so acknowledgements and data go out in as few writes as possible.
    func receive(_ datagram: ByteBuffer, from address: SocketAddress, ecn: UInt8 = 0) {
        switch state {
        case .closed, .draining:
            return
        case .closing:
            resendClosingPacket()
            return
        case .handshaking, .established:
            break
        }
        guard let conn else { return }
        updateRemoteAddress(address)
        let rc = datagram.withUnsafeReadableBytes { bytes in
            ah_ngtcp2_conn_read_pkt(conn, &path, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                    bytes.count, ecn, QUICClock.now())
        }
        if rc != 0 {
            handleReadError(rc)
        }
        needsWrite = true
    }

    /// After a batch of reads (or any other event): deliver to the application, then write.
    func flushAfterReads() {
        guard state != .closed else { return }
        runDeferredEvents()
        if needsWrite {
            needsWrite = false
            writePackets()
        }
    }

    private func handleReadError(_ rc: Int32) {
        switch rc {
        case NGTCP2_ERR_DRAINING:
            // The peer closed; record why and go quiet for the draining period.
            enterDraining()
        case NGTCP2_ERR_DROP_CONN:
            release(error: closeError ?? .connectionClosed)
        case NGTCP2_ERR_CRYPTO where state == .established && tls == nil:
            // TLS data after the handshake, which a server no longer has a session for.
            let alert = ngtcp2_conn_get_tls_alert(conn)
            let error = QUICError.ngtcp2("peer sent TLS handshake data after the handshake (\(tlsAlertName(alert)))",
                                         code: NGTCP2_ERR_CRYPTO)
            closeWithTransportError(error) { ccerr, bytes in
                ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, bytes.baseAddress, bytes.count)
            }
        case NGTCP2_ERR_CRYPTO:
            let alert = ngtcp2_conn_get_tls_alert(conn)
            let reason = verificationFailure ?? "TLS handshake failed: \(tlsAlertName(alert))"
            closeWithTransportError(.handshakeFailed(reason: reason)) { ccerr, bytes in
                ngtcp2_connection_close_error_set_transport_error_tls_alert(&ccerr, alert, bytes.baseAddress, bytes.count)
            }
        case NGTCP2_ERR_CALLBACK_FAILURE where verificationFailure != nil:
            let reason = verificationFailure!
            closeWithTransportError(.peerRefused(reason: reason)) { ccerr, bytes in
                ngtcp2_connection_close_error_set_transport_error(&ccerr, UInt64(NGTCP2_CONNECTION_REFUSED), bytes.baseAddress, bytes.count)
            }
        default:
            let error = QUICError.ngtcp2("reading packet", code: rc)
            closeWithTransportError(error) { ccerr, bytes in
                ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rc, bytes.baseAddress, bytes.count)
            }
        }
    }

    // MARK: - Writing

    /// Writes as many packets as congestion control, pacing and flow control allow.
    func writePackets() {
        guard let conn, !isWriting, state == .handshaking || state == .established else { return }
        isWriting = true
        defer { isWriting = false }

        let now = QUICClock.now()
        let payloadSize = state == .established ? datagramSizing.established : datagramSizing.handshake
        let quantum = ngtcp2_conn_get_send_quantum(conn)
        let maxPackets = max(1, min(64, quantum / max(1, payloadSize)))
        var out = channel.allocator.buffer(capacity: maxPackets * payloadSize)
        var packetSizes: [Int] = []
        packetSizes.reserveCapacity(maxPackets)
        var vecs = [ngtcp2_vec](repeating: ngtcp2_vec(), count: 16)
        var fatal: Int32 = 0

        while packetSizes.count < maxPackets {
            let stream = sendQueue.first
            var vecCount = 0
            var flags = UInt32(NGTCP2_WRITE_STREAM_FLAG_MORE)
            var streamID: Int64 = -1
            var offersFIN = false
            if let stream {
                streamID = stream.streamID
                vecCount = stream.fillUnsent(&vecs)
                if stream.finQueued && stream.unsentCoveredBy(vecCount: vecCount) {
                    flags |= UInt32(NGTCP2_WRITE_STREAM_FLAG_FIN)
                    offersFIN = true
                }
            }
            var dataLength: ngtcp2_ssize = -1
            var written: ngtcp2_ssize = 0
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: payloadSize) { dest in
                written = vecs.withUnsafeBufferPointer { v in
                    ah_ngtcp2_conn_writev_stream(conn, &path, dest.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                 payloadSize, &dataLength, flags, streamID, v.baseAddress, vecCount, now)
                }
                return written > 0 ? Int(written) : 0
            }
            if written < 0 {
                switch Int32(written) {
                case NGTCP2_ERR_WRITE_MORE:
                    stream?.sent(Int(dataLength), finIncluded: offersFIN)
                    rotate(stream)
                    continue
                case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                    stream?.isFlowControlBlocked = true
                    dequeue(stream)
                    continue
                case NGTCP2_ERR_STREAM_SHUT_WR, NGTCP2_ERR_STREAM_NOT_FOUND:
                    stream?.outputShutByTransport()
                    dequeue(stream)
                    continue
                default:
                    fatal = Int32(written)
                }
                break
            }
            if dataLength >= 0, let stream {
                stream.sent(Int(dataLength), finIncluded: offersFIN)
                rotate(stream)
            }
            if written == 0 { break }
            packetSizes.append(Int(written))
        }

        if !packetSizes.isEmpty {
            emit(&out, packetSizes: packetSizes)
            ngtcp2_conn_update_pkt_tx_time(conn, now)
        }
        if fatal != 0 {
            let error = QUICError.ngtcp2("writing packet", code: fatal)
            closeWithTransportError(error) { ccerr, bytes in
                ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, fatal, bytes.baseAddress, bytes.count)
            }
            return
        }
        armTimer()
    }

    /// Sends the packets packed back to back in `out`. With UDP GSO, runs of equal-size
    /// packets (a shorter one may close a run) go down as one `sendmsg` the kernel splits,
    /// which is what makes bulk transfer cheap; otherwise one datagram per packet.
    private func emit(_ out: inout ByteBuffer, packetSizes: [Int]) {
        if owner.segmentationOffload {
            var index = 0
            while index < packetSizes.count {
                let segment = packetSizes[index]
                var count = 1
                var bytes = segment
                while index + count < packetSizes.count, count < 64 {
                    let next = packetSizes[index + count]
                    guard next <= segment, bytes + next <= 65_000 else { break }
                    count += 1
                    bytes += next
                    if next < segment { break }  // a short packet must end a GSO run
                }
                let data = out.readSlice(length: bytes)!
                var envelope = AddressedEnvelope(remoteAddress: remoteAddress, data: data)
                if count > 1 {
                    envelope.metadata = .init(ecnState: .transportNotCapable, packetInfo: nil, segmentSize: segment)
                }
                channel.write(envelope, promise: nil)
                index += count
            }
        } else {
            for size in packetSizes {
                let packet = out.readSlice(length: size)!
                channel.write(AddressedEnvelope(remoteAddress: remoteAddress, data: packet), promise: nil)
            }
        }
        channel.flush()
    }

    func sendRaw(_ packet: ByteBuffer) {
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: remoteAddress, data: packet), promise: nil)
    }

    /// Moves a stream that still has data to the back of the queue (round robin), or drops
    /// it from the queue once it has nothing left to send.
    private func rotate(_ stream: QUICStreamChannel?) {
        guard let stream, sendQueue.first === stream else { return }
        sendQueue.removeFirst()
        if stream.hasDataToSend {
            sendQueue.append(stream)
        } else {
            stream.isInSendQueue = false
        }
    }

    private func dequeue(_ stream: QUICStreamChannel?) {
        guard let stream, sendQueue.first === stream else { return }
        sendQueue.removeFirst()
        stream.isInSendQueue = false
    }

    func enqueueForSending(_ stream: QUICStreamChannel) {
        guard !stream.isInSendQueue, !stream.isFlowControlBlocked, stream.hasDataToSend else { return }
        stream.isInSendQueue = true
        sendQueue.append(stream)
        scheduleWrite()
    }

    /// Asks for a write pass soon. Requests made while a read batch is being processed are
    /// served by that batch's `flushAfterReads()`; others coalesce into one loop task.
    func scheduleWrite() {
        needsWrite = true
        guard !writeScheduled else { return }
        writeScheduled = true
        eventLoop.execute { [self] in
            writeScheduled = false
            flushAfterReads()
        }
    }

    // MARK: - Timers

    /// Keeps a loop timer aimed at ngtcp2's next expiry (loss detection, ACK delay, pacing,
    /// idle timeout, keep-alive). A new task is scheduled only when the deadline moves
    /// earlier than the earliest one pending; the later task is not cancelled but left to
    /// fire and find nothing due. Cancelling searches the event loop's whole timer heap, and
    /// an access point with thousands of connections moves every one of them earlier for
    /// each heartbeat it acknowledges (the ACK delay): that search was a tenth of its idle
    /// CPU. A task that fires early just re-arms.
    func armTimer() {
        guard let conn else { return }
        let expiry = ngtcp2_conn_get_expiry(conn)
        guard expiry != UInt64.max, expiry < expiryDeadline else { return }
        expiryDeadline = expiry
        expiryGeneration &+= 1
        let generation = expiryGeneration
        let now = QUICClock.now()
        let delay = expiry > now ? TimeAmount.nanoseconds(Int64(expiry - now)) : .zero
        // Weak: a superseded task may outlive the connection by up to the idle timeout.
        expiryTask = eventLoop.scheduleTask(in: delay) { [weak self] in
            self?.timerFired(generation: generation)
        }
    }

    /// Only the newest task counts (it is always the earliest we rely on); superseded ones
    /// do nothing, so they cannot multiply by re-arming.
    private func timerFired(generation: UInt64) {
        guard generation == expiryGeneration else { return }
        expiryDeadline = .max
        expiryTask = nil
        // Closing and draining run on their own timer (startClosingPeriodTimer).
        guard state == .handshaking || state == .established else { return }
        onTimer()
    }

    private func onTimer() {
        guard let conn else { return }
        let now = QUICClock.now()
        if ngtcp2_conn_get_expiry(conn) > now {
            armTimer()
            return
        }
        let rc = ngtcp2_conn_handle_expiry(conn, now)
        switch rc {
        case 0:
            writePackets()
            runDeferredEvents()
        case NGTCP2_ERR_IDLE_CLOSE:
            logger.info("connection idle for \(configuration.idleTimeout); closing")
            release(error: .idleTimeout)
        case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
            logger.warning("handshake did not complete within \(configuration.handshakeTimeout)")
            release(error: .handshakeTimeout)
        default:
            let error = QUICError.ngtcp2("handling timer", code: rc)
            closeWithTransportError(error) { ccerr, bytes in
                ngtcp2_connection_close_error_set_transport_error_liberr(&ccerr, rc, bytes.baseAddress, bytes.count)
            }
        }
    }
}

/// GnuTLS's name for a TLS alert ("Certificate is required", ...), for logs and errors.
func tlsAlertName(_ alert: UInt8) -> String {
    guard let name = gnutls_alert_get_name(gnutls_alert_description_t(rawValue: UInt32(alert))) else {
        return "TLS alert \(alert)"
    }
    return "\(String(cString: name)) (TLS alert \(alert))"
}
