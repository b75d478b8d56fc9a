// The C glue between one GnuTLS session and NIO byte buffers: a memory transport (GnuTLS
// pulls ciphertext from `inbound` and pushes ciphertext to `outbound`) and thin wrappers
// over the record-layer calls. No I/O, no threads: GnuTLSHandler drives it on its event loop.

internal import AHGnuTLS
internal import CGnuTLS
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The largest plaintext in one TLS record (2^14), also the chunk size for sends.
let maxRecordPlaintext = 16_384

/// One TLS session over an in-memory transport.
///
/// Who owns which C pointer:
/// - `handle` (`gnutls_session_t`) belongs to this object. It is created in `init` and freed
///   exactly once by `close()` (which the handler calls from `channelInactive` /
///   `handlerRemoved`; `deinit` is only a safety net). Every method checks for `nil` first,
///   so nothing touches a freed session.
/// - GnuTLS's transport pointer is this object, *unretained*. That is sound because GnuTLS
///   only calls the push/pull callbacks from inside calls made through `handle`, and
///   `handle` never outlives `self`.
/// - The credentials and priority cache the session references are owned by `context`,
///   which this object retains, so they outlive the session.
/// - The client's verification name is copied and owned by the C session (freed by
///   `ah_stream_tls_session_free`). ALPN names and SNI are copied by GnuTLS.
///
/// Confined to one event loop; not thread-safe.
final class GnuTLSSession {
    private(set) var handle: gnutls_session_t?
    private let context: TLSContextStorage
    private let allocator: ByteBufferAllocator
    /// Ciphertext received from the network that GnuTLS has not pulled yet (at most one
    /// partial record between calls, since the handler decrypts everything it can).
    private(set) var inbound: ByteBuffer
    /// Ciphertext GnuTLS produced that has not been handed to the channel yet.
    private var outbound: ByteBuffer

    /// - Parameter serverName: nil for a server; for a client, the name (or IP literal) to
    ///   verify the server certificate against and to send as SNI (names only).
    init(isServer: Bool, context: TLSContextStorage, serverName: String?, alpn: [String],
         allocator: ByteBufferAllocator) throws {
        self.context = context
        self.allocator = allocator
        inbound = allocator.buffer(capacity: 0)
        outbound = allocator.buffer(capacity: 0)

        var wireALPN: [UInt8] = []
        for name in alpn {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError.configuration("ALPN protocol name must be 1 to 255 bytes: \"\(name)\"")
            }
            wireALPN.append(UInt8(bytes.count))
            wireALPN.append(contentsOf: bytes)
        }

        var session: gnutls_session_t?
        let transport = Unmanaged.passUnretained(self).toOpaque()
        let rv = wireALPN.withUnsafeBufferPointer { alpnBytes in
            ah_stream_tls_session_new(&session, isServer ? 1 : 0, context.credentials, context.priority,
                               serverName, alpnBytes.baseAddress, alpnBytes.count, transport,
                               pushCallback, pullCallback, pullTimeoutCallback)
        }
        guard rv >= 0, let session else {
            throw TLSError.configuration("cannot create a TLS session: \(GnuTLSError.reason(rv))")
        }
        handle = session
    }

    deinit {
        close()
    }

    /// Frees the GnuTLS session (idempotent) and drops buffered ciphertext.
    func close() {
        if let handle {
            ah_stream_tls_session_free(handle)
            self.handle = nil
        }
        inbound.clear()
        outbound.clear()
    }

    // MARK: transport

    /// Queues ciphertext from the network for GnuTLS to pull.
    func appendInbound(_ buffer: inout ByteBuffer) {
        if inbound.readableBytes == 0 {
            inbound = buffer
        } else {
            inbound.discardReadBytes()
            inbound.writeBuffer(&buffer)
        }
    }

    /// Ciphertext produced since the last call, if any.
    func takeOutbound() -> ByteBuffer? {
        guard outbound.readableBytes > 0 else { return nil }
        let taken = outbound
        outbound = allocator.buffer(capacity: 0)
        return taken
    }

    fileprivate func push(_ data: UnsafeRawPointer?, _ length: Int) -> Int {
        if let data, length > 0 {
            outbound.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
        }
        return length
    }

    /// Whether the last `handshake()` / `receive(into:)` ran out of ciphertext. GnuTLS also
    /// answers GNUTLS_E_AGAIN after digesting a TLS 1.3 post-handshake message (session
    /// ticket, key update) while more records sit in its buffer; only a starved AGAIN means
    /// "wait for the network".
    private(set) var starved = false

    fileprivate func pull(_ destination: UnsafeMutableRawPointer?, _ length: Int) -> Int {
        let count = min(length, inbound.readableBytes)
        guard count > 0, let destination else {
            // Nothing buffered: "would block"; the handler calls again when bytes arrive.
            starved = true
            gnutls_transport_set_errno(handle, EAGAIN)
            return -1
        }
        inbound.withUnsafeReadableBytes { source in
            destination.copyMemory(from: source.baseAddress!, byteCount: count)
        }
        inbound.moveReaderIndex(forwardBy: count)
        return count
    }

    fileprivate var hasInbound: Bool { inbound.readableBytes > 0 }

    // MARK: TLS operations (return GnuTLS codes; GNUTLS_E_INVALID_SESSION once closed)

    func handshake() -> Int32 {
        guard let handle else { return GNUTLS_E_INVALID_SESSION }
        starved = false
        return gnutls_handshake(handle)
    }

    /// Decrypts at most one record's worth into `buffer`: > 0 bytes read, 0 on close_notify,
    /// < 0 a GnuTLS error (GNUTLS_E_AGAIN when more ciphertext is needed).
    func receive(into buffer: inout ByteBuffer) -> Int {
        guard let handle else { return Int(GNUTLS_E_INVALID_SESSION) }
        starved = false
        var result = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maxRecordPlaintext) { space in
            result = gnutls_record_recv(handle, space.baseAddress, space.count)
            return max(result, 0)
        }
        return result
    }

    /// Encrypts up to one record of `bytes`: the number of bytes consumed, or a GnuTLS error.
    func send(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard let handle else { return Int(GNUTLS_E_INVALID_SESSION) }
        return gnutls_record_send(handle, bytes.baseAddress, min(bytes.count, maxRecordPlaintext))
    }

    /// Queues a close_notify alert; the session can still receive afterwards.
    func sendCloseNotify() {
        guard let handle else { return }
        _ = gnutls_bye(handle, GNUTLS_SHUT_WR)
    }

    /// Queues a TLS 1.3 KeyUpdate, asking the peer to update its keys too if `requestPeer`.
    func updateKeys(requestPeer: Bool) -> Int32 {
        guard let handle else { return GNUTLS_E_INVALID_SESSION }
        return gnutls_session_key_update(handle, requestPeer ? UInt32(GNUTLS_KU_PEER) : 0)
    }

    /// Queues the alert that best describes `error` (best effort).
    func sendAlert(for error: Int32) {
        guard let handle else { return }
        _ = gnutls_alert_send_appropriate(handle, error)
    }

    // MARK: session facts

    var protocolVersion: String {
        guard let handle, let name = gnutls_protocol_get_name(gnutls_protocol_get_version(handle)) else {
            return "unknown"
        }
        return String(cString: name)
    }

    var negotiatedALPN: String? {
        guard let handle else { return nil }
        return GnuTLSSessionFacts.selectedALPN(handle)
    }

    /// The error to report for a failed handshake call.
    func handshakeError(_ code: Int32) -> TLSError {
        switch code {
        case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
            guard let handle else { return .certificateVerificationFailed(reason: GnuTLSError.reason(code)) }
            let status = gnutls_session_get_verify_cert_status(handle)
            guard status != 0 else { return .certificateVerificationFailed(reason: "the peer presented no usable certificate") }
            return .certificateVerificationFailed(reason: GnuTLSSessionFacts.verificationStatusText(status))
        case GNUTLS_E_PREMATURE_TERMINATION:
            return .unexpectedEOF
        case GNUTLS_E_FATAL_ALERT_RECEIVED:
            return .handshakeFailed(reason: "\(GnuTLSError.reason(code)): \(receivedAlertName)")
        default:
            return .handshakeFailed(reason: GnuTLSError.reason(code))
        }
    }

    /// The error to report for a failed record call after the handshake.
    func recordError(_ code: Int32) -> TLSError {
        if code == GNUTLS_E_FATAL_ALERT_RECEIVED {
            return .recordFailed(reason: "\(GnuTLSError.reason(code)): \(receivedAlertName)")
        }
        return .recordFailed(reason: GnuTLSError.reason(code))
    }

    private var receivedAlertName: String {
        guard let handle, let name = gnutls_alert_get_name(gnutls_alert_get(handle)) else { return "unknown alert" }
        return String(cString: name)
    }
}

// The transport callbacks. `transport` is the GnuTLSSession (see the ownership note above).

private let pushCallback: gnutls_push_func = { transport, data, length in
    Unmanaged<GnuTLSSession>.fromOpaque(transport!).takeUnretainedValue().push(data, length)
}

private let pullCallback: gnutls_pull_func = { transport, destination, length in
    Unmanaged<GnuTLSSession>.fromOpaque(transport!).takeUnretainedValue().pull(destination, length)
}

/// GnuTLS never waits on this transport: data is either buffered already or not.
private let pullTimeoutCallback: gnutls_pull_timeout_func = { transport, _ in
    Unmanaged<GnuTLSSession>.fromOpaque(transport!).takeUnretainedValue().hasInbound ? 1 : 0
}
