import CNgtcp2
import NIOCore

/// How big the datagrams of one connection may be.
///
/// Across a network a QUIC packet must fit the path MTU (we start at ngtcp2's 1,200 bytes
/// and let its Path MTU Discovery climb to `maxUDPPayloadSize`). When the peer is on a
/// loopback address no link or router lies in between: the loopback device's MTU is 64 KiB,
/// so a packet can be as big as a UDP datagram gets. Bigger packets divide the per-packet
/// work (AEAD setup, header protection, ACK bookkeeping, one kernel call each) by ~40,
/// which is what a relay moving bulk SSH data between processes on one machine spends its
/// CPU on. Until the handshake completes packets keep the ordinary size, so handshakes
/// (and the padding of Initial packets) cost the same as on any path.
struct DatagramSizing {
    /// The most we write into one datagram once the handshake is done.
    let established: Int
    /// The most during the handshake.
    let handshake: Int
    /// True when the big size applies: ngtcp2 must then not shape payloads or probe the PMTU.
    let isLoopback: Bool

    init(remote: SocketAddress, configuration: QUICConfiguration) {
        handshake = configuration.maxUDPPayloadSize
        if let loopbackSize = configuration.loopbackUDPPayloadSize, remote.isLoopback {
            isLoopback = true
            established = max(configuration.maxUDPPayloadSize, min(loopbackSize, remote.maxUDPPayload))
        } else {
            isLoopback = false
            established = configuration.maxUDPPayloadSize
        }
    }

    func apply(to settings: inout ngtcp2_settings) {
        settings.max_tx_udp_payload_size = established
        if isLoopback {
            // Use the size we pass per write call instead of what PMTUD has probed (it never
            // probes past Ethernet sizes); there is no path to discover on loopback.
            settings.no_tx_udp_payload_size_shaping = 1
            settings.no_pmtud = 1
        }
    }
}

extension SocketAddress {
    /// 127.0.0.0/8, ::1, or an IPv4-mapped 127.x address.
    var isLoopback: Bool {
        switch self {
        case .v4(let address):
            return UInt32(bigEndian: address.address.sin_addr.s_addr) >> 24 == 127
        case .v6(let address):
            let bytes = withUnsafeBytes(of: address.address.sin6_addr) { Array($0) }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
            let mapped = bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff
            return mapped && bytes[12] == 127
        case .unixDomainSocket:
            return false
        }
    }

    /// The largest UDP payload one datagram can carry to this address (65,535 minus headers).
    var maxUDPPayload: Int {
        if case .v6 = self { return 65_527 }
        return 65_507
    }
}
