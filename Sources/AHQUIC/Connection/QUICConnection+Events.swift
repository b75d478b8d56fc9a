import AHGnuTLS
import AHSPIFFE
import CNgtcp2
import NIOCore

/// Handlers for ngtcp2/GnuTLS callbacks. They run inside ngtcp2 calls: they record what
/// happened and queue work; `runDeferredEvents()` hands it to the application afterwards,
/// so application code never re-enters ngtcp2 from inside a callback.
extension QUICConnection {
    func newConnectionID(cid: UnsafeMutablePointer<ngtcp2_cid>, token: UnsafeMutablePointer<UInt8>, length: Int) -> Int32 {
        var bytes = [UInt8](repeating: 0, count: length)
        secureRandom(&bytes)
        let id = bytes.withUnsafeBytes { ConnectionID(bytes: $0) }
        cid.pointee = id.ngtcp2
        let secret = owner.statelessResetSecret
        let rc = secret.withUnsafeBufferPointer {
            ngtcp2_crypto_generate_stateless_reset_token(token, $0.baseAddress, $0.count, cid)
        }
        guard rc == 0 else { return NGTCP2_ERR_CALLBACK_FAILURE }
        registerID(id)
        return 0
    }

    func removeConnectionID(_ cid: ngtcp2_cid) {
        let id = ConnectionID(cid)
        registeredIDs.removeAll { $0 == id }
        owner.unregister(id)
    }

    /// Called by GnuTLS while it processes the peer's Certificate message.
    func verifyPeer(session: gnutls_session_t) -> Bool {
        switch PeerCertificateCheck.verify(session: session, configuration: configuration) {
        case .success(let peer):
            peerIdentity = peer.id
            peerPublicKeySHA256 = peer.publicKeySHA256
            verifiedPeer = peer
            return true
        case .failure(let rejection):
            let reason = rejection.description
            if reason == PeerCertificateCheck.noCertificate, role == .server,
               configuration.clientCertificateOptionalALPNs.contains(selectedALPN() ?? "") {
                return true  // allowed without certificate on this ALPN; no identity
            }
            verificationFailure = reason
            logger.warning("refusing peer during handshake", metadata: ["reason": "\(reason)"])
            return false
        }
    }

    func selectedALPN() -> String? {
        guard let tls else { return nil }
        return GnuTLSSessionFacts.selectedALPN(tls)
    }

    func onHandshakeCompleted() -> Int32 {
        let selected = selectedALPN() ?? ""
        let acceptable = [configuration.alpn] + (role == .server ? configuration.additionalALPNs : [])
        guard acceptable.contains(selected) else {
            verificationFailure = "peer negotiated ALPN '\(selected)', expected one of \(acceptable)"
            return NGTCP2_ERR_CALLBACK_FAILURE
        }
        negotiatedALPN = selected
        let anonymousAllowed = role == .server && configuration.clientCertificateOptionalALPNs.contains(selected)
        guard peerIdentity != nil || anonymousAllowed else {
            verificationFailure = verificationFailure ?? PeerCertificateCheck.noCertificate
            return NGTCP2_ERR_CALLBACK_FAILURE
        }
        if role == .server {
            // Our side has verified the client's certificate: the connection is usable.
            becomeEstablished()
        }
        return 0
    }

    func onHandshakeConfirmed() {
        if role == .client {
            // The server sends HANDSHAKE_DONE only after accepting our certificate.
            becomeEstablished()
        }
    }

    private func becomeEstablished() {
        guard state == .handshaking else { return }
        state = .established
        logger.debug("connection established", metadata: ["peer": "\(peerIdentity.map { "\($0)" } ?? "?")"])
        deferredEstablished = true
    }

    func onRemoteStreamOpened(_ streamID: Int64) {
        let stream = QUICStreamChannel(connection: self, streamID: streamID, locallyInitiated: false)
        streams[streamID] = stream
        newlyOpenedStreams.append(stream)
    }

    func onStreamData(_ streamID: Int64, _ data: UnsafeRawBufferPointer, fin: Bool) {
        guard let stream = streams[streamID] else {
            // The application already let go of the stream: still return the credit.
            creditConsumed(streamID: streamID, bytes: data.count)
            return
        }
        stream.received(data, fin: fin)
        markInboundEvent(stream)
    }

    func onStreamDataAcked(_ streamID: Int64, upTo offset: UInt64) {
        streams[streamID]?.acknowledged(upTo: offset)
    }

    func onStreamClosed(_ streamID: Int64, applicationErrorCode: UInt64?) {
        if ngtcp2_conn_is_local_stream(conn, streamID) == 0 {
            // Replenish the peer's stream budget as its streams finish.
            if ngtcp2_is_bidi_stream(streamID) != 0 {
                ngtcp2_conn_extend_max_streams_bidi(conn, 1)
            } else {
                ngtcp2_conn_extend_max_streams_uni(conn, 1)
            }
        }
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        stream.transportClosed(applicationErrorCode: applicationErrorCode)
        markInboundEvent(stream)
    }

    func onStreamReset(_ streamID: Int64, applicationErrorCode: UInt64) {
        guard let stream = streams[streamID] else { return }
        stream.resetByPeer(applicationErrorCode)
        markInboundEvent(stream)
    }

    func onStreamCreditExtended(_ streamID: Int64) {
        guard let stream = streams[streamID], stream.isFlowControlBlocked else { return }
        stream.isFlowControlBlocked = false
        enqueueForSending(stream)
    }

    func markInboundEvent(_ stream: QUICStreamChannel) {
        if !stream.hasPendingInboundEvent {
            stream.hasPendingInboundEvent = true
            streamsWithInboundEvents.append(stream)
        }
    }

    /// Returns flow-control credit for bytes the application consumed (or that we dropped).
    func creditConsumed(streamID: Int64, bytes: Int) {
        guard let conn, bytes > 0 else { return }
        _ = ngtcp2_conn_extend_max_stream_offset(conn, streamID, UInt64(bytes))
        ngtcp2_conn_extend_max_offset(conn, UInt64(bytes))
        scheduleWrite()
    }

    /// A server's GnuTLS session has nothing left to do once the handshake is complete: the
    /// keys are installed in ngtcp2, the peer's identity is extracted, tickets are off, and
    /// QUIC forbids TLS KeyUpdate (key updates are ngtcp2's, from the installed secrets). It
    /// is ~16 KiB per connection, which an access point holding thousands of idle executors
    /// pays for nothing; it is freed here, outside any ngtcp2 call. The CRYPTO callback
    /// (CNgtcp2 shim) closes the connection if a client still sends handshake data.
    private func releaseTLSAfterHandshake() {
        guard let conn, let session = tls else { return }
        ngtcp2_conn_set_tls_native_handle(conn, nil)
        tls = nil
        gnutls_deinit(session)
    }

    /// Hands queued events to the application. Called after every batch of ngtcp2 calls.
    func runDeferredEvents() {
        if deferredEstablished {
            deferredEstablished = false
            if role == .server {
                releaseTLSAfterHandshake()
                owner.handshakeCompleted(self)
            }
            handshakePromise.succeed(())
        }
        if streamCreditArrived {
            streamCreditArrived = false
            servePendingStreamOpens()
        }
        while !newlyOpenedStreams.isEmpty {
            let opened = newlyOpenedStreams
            newlyOpenedStreams.removeAll()
            for stream in opened {
                if let initializer = inboundStreamInitializer {
                    initializer(stream).whenComplete { result in
                        switch result {
                        case .success: stream.activate()
                        case .failure: stream.close(promise: nil)
                        }
                    }
                } else {
                    stream.activate()
                }
            }
        }
        while !streamsWithInboundEvents.isEmpty {
            let pending = streamsWithInboundEvents
            streamsWithInboundEvents.removeAll()
            for stream in pending {
                stream.hasPendingInboundEvent = false
                stream.deliverInboundEvents()
            }
        }
    }
}
