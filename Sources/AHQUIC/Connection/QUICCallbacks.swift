import CNgtcp2

/// The C callbacks ngtcp2 and GnuTLS call into. Each one recovers the `QUICConnection`
/// from `user_data` (an unretained pointer: the connection outlives its ngtcp2 state) and
/// forwards to a method. They run synchronously inside ngtcp2 calls made on the
/// connection's event loop, so they only record state; application code runs afterwards.
enum QUICCallbacks {
    static func install(into cb: inout ngtcp2_callbacks) {
        cb.rand = { dest, len, _ in
            if let dest { secureRandom(dest, len) }
        }
        cb.get_new_connection_id = { _, cid, token, cidlen, userData in
            QUICConnection.from(userData).newConnectionID(cid: cid!, token: token!, length: cidlen)
        }
        cb.remove_connection_id = { _, cid, userData in
            QUICConnection.from(userData).removeConnectionID(cid!.pointee)
            return 0
        }
        cb.recv_stateless_reset = { _, _, userData in
            QUICConnection.from(userData).receivedStatelessReset = true
            return 0
        }
        cb.handshake_completed = { _, userData in
            QUICConnection.from(userData).onHandshakeCompleted()
        }
        cb.handshake_confirmed = { _, userData in
            QUICConnection.from(userData).onHandshakeConfirmed()
            return 0
        }
        cb.stream_open = { _, streamID, userData in
            QUICConnection.from(userData).onRemoteStreamOpened(streamID)
            return 0
        }
        cb.recv_stream_data = { _, flags, streamID, _, data, length, userData, _ in
            let buffer = UnsafeRawBufferPointer(start: data, count: length)
            QUICConnection.from(userData).onStreamData(streamID, buffer, fin: flags & NGTCP2_STREAM_DATA_FLAG_FIN != 0)
            return 0
        }
        cb.acked_stream_data_offset = { _, streamID, offset, length, userData, _ in
            QUICConnection.from(userData).onStreamDataAcked(streamID, upTo: offset + length)
            return 0
        }
        cb.stream_close = { _, flags, streamID, code, userData, _ in
            let hasCode = flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET != 0
            QUICConnection.from(userData).onStreamClosed(streamID, applicationErrorCode: hasCode ? code : nil)
            return 0
        }
        cb.stream_reset = { _, streamID, _, code, userData, _ in
            QUICConnection.from(userData).onStreamReset(streamID, applicationErrorCode: code)
            return 0
        }
        // ngtcp2 0.12 has no callback for a *received* STOP_SENDING (its `stream_stop_sending`
        // reports our own read shutdown). It answers with RESET_STREAM itself; the stream
        // channel infers the peer's STOP_SENDING from the write side being shut under it and
        // learns the code from `stream_close`.
        cb.extend_max_local_streams_bidi = { _, _, userData in
            QUICConnection.from(userData).streamCreditArrived = true
            return 0
        }
        cb.extend_max_local_streams_uni = { _, _, userData in
            QUICConnection.from(userData).streamCreditArrived = true
            return 0
        }
        cb.extend_max_stream_data = { _, streamID, _, userData, _ in
            QUICConnection.from(userData).onStreamCreditExtended(streamID)
            return 0
        }
    }

    /// GnuTLS verify callback: non-zero fails the handshake with a bad_certificate alert.
    static let verifyPeer: @convention(c) (gnutls_session_t?) -> Int32 = { session in
        guard let session, let ref = gnutls_session_get_ptr(session) else { return -1 }
        let connRef = ref.assumingMemoryBound(to: ngtcp2_crypto_conn_ref.self)
        let connection = QUICConnection.from(connRef.pointee.user_data)
        return connection.verifyPeer(session: session) ? 0 : -1
    }
}
