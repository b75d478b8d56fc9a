import AHSPIFFE
import AHLogFields
import AHGnuTLS
import CNgtcp2
import Logging
import NIOCore

/// One QUIC connection: an `ngtcp2_conn` plus its GnuTLS session, driven by one event loop.
///
/// Confinement: every stored property is read and written only on `eventLoop` (the loop of
/// the UDP channel that carries the connection). Public methods hop onto the loop. That is
/// what makes the `@unchecked Sendable` honest, and it is also what ngtcp2 requires: an
/// `ngtcp2_conn` is not thread-safe.
///
/// Ownership of C memory: this object owns `conn`, `tls`, `connRef` and the two sockaddr
/// storages; all are freed exactly once in `releaseNativeState()`. ngtcp2 keeps pointers
/// into stream send buffers (ByteBuffers retained by `QUICStreamChannel`) until it reports
/// them acknowledged; see docs/architecture.md.
public final class QUICConnection: @unchecked Sendable, CustomStringConvertible {
    public enum Role: Sendable { case client, server }

    enum State { case handshaking, established, closing, draining, closed }

    public let eventLoop: EventLoop
    public let role: Role
    let configuration: QUICConfiguration
    let credentials: TLSCredentials
    var logger: Logger
    let channel: Channel
    unowned(unsafe) let owner: QUICConnectionOwner

    var conn: OpaquePointer?
    var tls: gnutls_session_t?
    let connRef: UnsafeMutablePointer<ngtcp2_crypto_conn_ref>
    let localStorage: UnsafeMutablePointer<sockaddr_storage>
    let remoteStorage: UnsafeMutablePointer<sockaddr_storage>
    var path = ngtcp2_path()

    public let localAddress: SocketAddress
    public internal(set) var remoteAddress: SocketAddress
    /// Datagram sizes for this peer (fixed at creation: we refuse active migration).
    let datagramSizing: DatagramSizing
    /// The peer's verified SPIFFE ID, set during the handshake.
    public internal(set) var peerIdentity: SPIFFEID?
    /// SHA-256 of the peer leaf's SubjectPublicKeyInfo, set with `peerIdentity`.
    public internal(set) var peerPublicKeySHA256: [UInt8]?
    /// Everything the handshake verified about the peer's certificate.
    public internal(set) var verifiedPeer: VerifiedPeer?
    /// The ALPN both sides agreed on, once the handshake completed.
    public internal(set) var negotiatedALPN: String?
    /// Why peer verification failed, when it did (logged and reported in errors).
    var verificationFailure: String?

    var state: State = .handshaking
    var streams: [Int64: QUICStreamChannel] = [:]
    /// Streams with data (or a FIN) waiting to be handed to ngtcp2, in round-robin order.
    var sendQueue = CircularBuffer<QUICStreamChannel>()
    /// Streams with events for the application gathered while ngtcp2 was running callbacks.
    var streamsWithInboundEvents: [QUICStreamChannel] = []
    var newlyOpenedStreams: [QUICStreamChannel] = []
    /// Stream opens waiting for the peer to allow more streams.
    var pendingStreamOpens = CircularBuffer<(Bool, EventLoopPromise<QUICStreamChannel>)>()
    var streamCreditArrived = false
    /// Connection IDs of ours that route to this connection.
    var registeredIDs: [ConnectionID] = []

    var isWriting = false
    /// Something (credit, a new stream, a close) wants packets written after this batch.
    var needsWrite = false
    var deferredEstablished = false
    var writeScheduled = false
    var expiryTask: Scheduled<Void>?
    var expiryDeadline: UInt64 = .max
    /// The peer answered with a stateless reset: it no longer has this connection.
    var receivedStatelessReset = false
    /// Which scheduled expiry task is the current one (see `armTimer`).
    var expiryGeneration: UInt64 = 0
    var closeInfo: CloseInfo?
    var closeError: QUICError?
    /// The CONNECTION_CLOSE we sent, re-sent if the peer keeps talking during the closing period.
    var closingPacket: ByteBuffer?

    let handshakePromise: EventLoopPromise<Void>
    let closePromise: EventLoopPromise<Void>

    /// Runs for each stream the peer opens, before any of its data is delivered.
    var inboundStreamInitializer: (@Sendable (QUICStreamChannel) -> EventLoopFuture<Void>)?

    init(role: Role, channel: Channel, owner: QUICConnectionOwner, local: SocketAddress, remote: SocketAddress,
         configuration: QUICConfiguration, credentials: TLSCredentials, logger: Logger) {
        self.role = role
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.owner = owner
        self.localAddress = local
        self.remoteAddress = remote
        self.datagramSizing = DatagramSizing(remote: remote, configuration: configuration)
        self.configuration = configuration
        self.credentials = credentials
        self.logger = logger
        self.connRef = .allocate(capacity: 1)
        self.localStorage = .allocate(capacity: 1)
        self.remoteStorage = .allocate(capacity: 1)
        self.handshakePromise = channel.eventLoop.makePromise()
        self.closePromise = channel.eventLoop.makePromise()
        self.logger[metadataKey: "remote"] = "\(remote)"
        setPathAddress(local, into: localStorage, addr: &path.local)
        setPathAddress(remote, into: remoteStorage, addr: &path.remote)
        connRef.initialize(to: ngtcp2_crypto_conn_ref(get_conn: { ref in
            let connection = Unmanaged<QUICConnection>.fromOpaque(ref!.pointee.user_data).takeUnretainedValue()
            return connection.conn
        }, user_data: nil))
        connRef.pointee.user_data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        connRef.deallocate()
        localStorage.deallocate()
        remoteStorage.deallocate()
    }

    func registerID(_ id: ConnectionID) {
        registeredIDs.append(id)
        owner.register(id, for: self)
    }

    var userData: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ userData: UnsafeMutableRawPointer?) -> QUICConnection {
        Unmanaged<QUICConnection>.fromOpaque(userData!).takeUnretainedValue()
    }

    public var description: String {
        "QUICConnection(\(role), \(remoteAddress.hostPort)\(peerIdentity.map { ", \($0)" } ?? ""))"
    }

    // MARK: - Public API

    /// Completes when the handshake is done and, on a client, confirmed by the server (so
    /// the server has accepted our certificate too). Fails with the reason otherwise.
    public var handshakeComplete: EventLoopFuture<Void> { handshakePromise.futureResult }

    /// Completes when the connection is fully closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }

    /// Why the connection ended, once it has (`nil` while open).
    public var closeReason: QUICError? {
        eventLoop.assertInEventLoop()
        return closeError
    }

    /// Opens a stream and runs `initializer` on it before returning it, so handlers are in
    /// place before any data can arrive.
    public func openStream(
        bidirectional: Bool = true,
        initializer: @escaping @Sendable (QUICStreamChannel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }
    ) -> EventLoopFuture<QUICStreamChannel> {
        handshakeComplete.flatMap {
            do {
                let stream = try self.openStreamNow(bidirectional: bidirectional)
                return initializer(stream).map {
                    stream.activate()
                    return stream
                }.flatMapErrorThrowing { error in
                    stream.close(promise: nil)
                    throw error
                }
            } catch {
                return self.eventLoop.makeFailedFuture(error)
            }
        }
    }

    /// Closes the connection with an application error code and a reason the peer sees.
    public func close(applicationErrorCode: UInt64 = 0, reason: String = "") {
        eventLoop.execute {
            self.closeLocally(CloseInfo(kind: .application, code: applicationErrorCode, reason: reason))
        }
    }

    // MARK: - Setup

    private func setPathAddress(_ address: SocketAddress, into storage: UnsafeMutablePointer<sockaddr_storage>, addr: inout ngtcp2_addr) {
        address.withSockAddr { sa, len in
            ah_ngtcp2_addr_set(&addr, storage, sa, socklen_t(len))
        }
    }

    func updateRemoteAddress(_ address: SocketAddress) {
        guard address != remoteAddress else { return }
        remoteAddress = address
        setPathAddress(address, into: remoteStorage, addr: &path.remote)
    }

    func makeSettings() -> ngtcp2_settings {
        var settings = ngtcp2_settings()
        ah_ngtcp2_settings_default(&settings)
        settings.initial_ts = QUICClock.now()
        datagramSizing.apply(to: &settings)
        settings.max_window = configuration.maxConnectionWindow
        settings.max_stream_window = configuration.maxStreamWindow
        settings.handshake_timeout = configuration.handshakeTimeout.ngtcp2Duration
        // Acknowledge in the write pass that follows every read batch instead of after two
        // packets or the ACK delay. Bulk transfers are unaffected (a batch is many packets
        // and gets one ACK either way); a lone heartbeat or PING is acknowledged at once
        // instead of arming a 25 ms timer, which for an access point holding thousands of
        // idle executors was most of its timer work.
        settings.ack_thresh = 1
        switch configuration.congestionControl {
        case .reno: settings.cc_algo = NGTCP2_CC_ALGO_RENO
        case .cubic: settings.cc_algo = NGTCP2_CC_ALGO_CUBIC
        case .bbr: settings.cc_algo = NGTCP2_CC_ALGO_BBR
        }
        return settings
    }

    func makeTransportParams() -> ngtcp2_transport_params {
        var params = ngtcp2_transport_params()
        ah_ngtcp2_transport_params_default(&params)
        params.initial_max_stream_data_bidi_local = configuration.initialStreamWindow
        params.initial_max_stream_data_bidi_remote = configuration.initialStreamWindow
        params.initial_max_stream_data_uni = configuration.initialStreamWindow
        params.initial_max_data = configuration.initialConnectionWindow
        params.initial_max_streams_bidi = configuration.maxConcurrentBidirectionalStreams
        params.initial_max_streams_uni = configuration.maxConcurrentUnidirectionalStreams
        params.max_idle_timeout = configuration.idleTimeout.ngtcp2Duration
        params.active_connection_id_limit = 4
        // Executors and access points do not roam; refusing active migration keeps path handling simple.
        params.disable_active_migration = 1
        return params
    }

    func makeCallbacks() -> ngtcp2_callbacks {
        var callbacks = ngtcp2_callbacks()
        ah_ngtcp2_callbacks_crypto_defaults(&callbacks, role == .server ? 1 : 0)
        QUICCallbacks.install(into: &callbacks)
        return callbacks
    }

    /// Creates the GnuTLS session and ties it to `conn`.
    func attachTLS() throws {
        var session: gnutls_session_t?
        let names = [configuration.alpn] + (role == .server ? configuration.additionalALPNs : [])
        let optional = role == .server && !configuration.clientCertificateOptionalALPNs.isEmpty
        // All names back to back in one buffer; the datums point into it only for this call
        // (GnuTLS copies the protocol list).
        var joined = names.flatMap { Array($0.utf8) }
        let rc = joined.withUnsafeMutableBufferPointer { bytes -> Int32 in
            var offset = 0
            var datums = names.map { name -> gnutls_datum_t in
                let length = name.utf8.count
                defer { offset += length }
                return gnutls_datum_t(data: bytes.baseAddress! + offset, size: UInt32(length))
            }
            return configuration.serverName.withCString { serverName in
                ah_tls_session_new(&session, role == .server ? 1 : 0, credentials.priority, credentials.handle,
                                   &datums, UInt32(datums.count), optional ? 1 : 0, serverName,
                                   connRef, QUICCallbacks.verifyPeer)
            }
        }
        guard rc == 0, let session else {
            throw QUICError.credentials("creating TLS session: \(GnuTLSError.reason(rc))")
        }
        tls = session
        ngtcp2_conn_set_tls_native_handle(conn, UnsafeMutableRawPointer(session))
        if let keepAlive = configuration.keepAliveInterval {
            ngtcp2_conn_set_keep_alive_timeout(conn, keepAlive.ngtcp2Duration)
        }
    }

    /// Starts a client connection: creates ngtcp2 state and sends the first flight.
    func startClient() throws {
        let dcid = ConnectionID.random()
        let scid = ConnectionID.random()
        var ngDCID = dcid.ngtcp2
        var ngSCID = scid.ngtcp2
        var callbacks = makeCallbacks()
        var settings = makeSettings()
        var params = makeTransportParams()
        var newConn: OpaquePointer?
        let rc = ah_ngtcp2_conn_client_new(&newConn, &ngDCID, &ngSCID, &path, NGTCP2_PROTO_VER_V1,
                                           &callbacks, &settings, &params, userData)
        guard rc == 0, let newConn else { throw QUICError.ngtcp2("creating client connection", code: rc) }
        conn = newConn
        try attachTLS()
        registerID(scid)
        writePackets()
    }

    /// Creates server state for a validated Initial packet.
    func startServer(header: ngtcp2_pkt_hd, originalDCID: ngtcp2_cid?, resetSecret: [UInt8]) throws {
        var hd = header
        let scid = ConnectionID.random()
        var ngSCID = scid.ngtcp2
        var callbacks = makeCallbacks()
        var settings = makeSettings()
        var params = makeTransportParams()
        if let originalDCID {
            params.original_dcid = originalDCID
            params.retry_scid = hd.dcid
            params.retry_scid_present = 1
        } else {
            params.original_dcid = hd.dcid
        }
        params.stateless_reset_token_present = 1
        let tokenRC = withUnsafeMutableBytes(of: &params.stateless_reset_token) { token in
            resetSecret.withUnsafeBufferPointer { secret in
                ngtcp2_crypto_generate_stateless_reset_token(
                    token.baseAddress!.assumingMemoryBound(to: UInt8.self), secret.baseAddress, secret.count, &ngSCID)
            }
        }
        guard tokenRC == 0 else { throw QUICError.ngtcp2("generating stateless reset token", code: tokenRC) }
        var newConn: OpaquePointer?
        let rc = ah_ngtcp2_conn_server_new(&newConn, &hd.scid, &ngSCID, &path, hd.version,
                                           &callbacks, &settings, &params, userData)
        guard rc == 0, let newConn else { throw QUICError.ngtcp2("creating server connection", code: rc) }
        conn = newConn
        try attachTLS()
        registerID(scid)
        registerID(ConnectionID(hd.dcid))
    }
}

/// What a connection needs from the endpoint that carries it.
protocol QUICConnectionOwner: AnyObject {
    func register(_ id: ConnectionID, for connection: QUICConnection)
    func unregister(_ id: ConnectionID)
    func handshakeCompleted(_ connection: QUICConnection)
    func handshakeFailed(_ connection: QUICConnection)
    func connectionReleased(_ connection: QUICConnection)
    var statelessResetSecret: [UInt8] { get }
    /// Whether the socket can take GSO writes (`UDP_SEGMENT`).
    var segmentationOffload: Bool { get }
}

enum QUICClock {
    static func now() -> UInt64 { ah_monotonic_ns() }
}
