import CNgtcp2
import NIOCore

extension QUICConnection {
    /// Opens a stream now, or waits for the peer to grant more streams if its limit is
    /// reached (`extend_max_local_streams_*`). Runs on the event loop.
    func openStreamNow(bidirectional: Bool) throws -> QUICStreamChannel {
        guard state == .established, let conn else { throw closeError ?? QUICError.connectionClosed }
        var streamID: Int64 = -1
        let rc = bidirectional
            ? ngtcp2_conn_open_bidi_stream(conn, &streamID, nil)
            : ngtcp2_conn_open_uni_stream(conn, &streamID, nil)
        if rc == NGTCP2_ERR_STREAM_ID_BLOCKED { throw QUICError.streamLimit }
        guard rc == 0 else { throw QUICError.ngtcp2("opening stream", code: rc) }
        let stream = QUICStreamChannel(connection: self, streamID: streamID, locallyInitiated: true)
        streams[streamID] = stream
        return stream
    }

    /// Like `openStream`, but when the peer's stream limit is reached it waits for credit
    /// instead of failing. Used by callers that open many streams at once.
    public func openStreamWaitingForCredit(
        bidirectional: Bool = true,
        initializer: @escaping @Sendable (QUICStreamChannel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) -> EventLoopFuture<QUICStreamChannel> {
        let promise = eventLoop.makePromise(of: QUICStreamChannel.self)
        eventLoop.execute {
            self.pendingStreamOpens.append((bidirectional, promise))
            self.servePendingStreamOpens()
        }
        return promise.futureResult.flatMap { stream in
            initializer(stream).map {
                stream.activate()
                return stream
            }.flatMapErrorThrowing { error in
                stream.close(promise: nil)
                throw error
            }
        }
    }

    /// Retries queued opens; called when the peer raises its stream limit.
    func servePendingStreamOpens() {
        while let (bidirectional, promise) = pendingStreamOpens.first {
            do {
                let stream = try openStreamNow(bidirectional: bidirectional)
                pendingStreamOpens.removeFirst()
                promise.succeed(stream)
            } catch QUICError.streamLimit {
                return
            } catch {
                pendingStreamOpens.removeFirst()
                promise.fail(error)
            }
        }
    }

    func failPendingStreamOpens(_ error: Error) {
        let pending = pendingStreamOpens
        pendingStreamOpens.removeAll()
        for (_, promise) in pending { promise.fail(error) }
    }
}
