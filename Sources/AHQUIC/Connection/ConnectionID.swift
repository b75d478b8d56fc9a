import CNgtcp2

/// A QUIC connection ID (0–20 bytes) as a value that hashes without allocating:
/// the endpoint looks one up for every datagram it receives.
struct ConnectionID: Hashable, CustomStringConvertible {
    private var a: UInt64 = 0
    private var b: UInt64 = 0
    private var c: UInt32 = 0
    private(set) var count: UInt8 = 0

    /// Our own source connection IDs are this long, so short-header packets can be routed.
    static let localLength = 16

    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= 20)
        count = UInt8(bytes.count)
        withUnsafeMutableBytes(of: &self) { raw in
            // a, b, c are laid out first; copy at most 20 bytes into them.
            raw.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
    }

    init(_ cid: ngtcp2_cid) {
        var cid = cid
        self = withUnsafeBytes(of: &cid.data) { raw in
            ConnectionID(bytes: UnsafeRawBufferPointer(rebasing: raw[0..<cid.datalen]))
        }
    }

    static func random() -> ConnectionID {
        var bytes = [UInt8](repeating: 0, count: localLength)
        secureRandom(&bytes)
        return bytes.withUnsafeBytes { ConnectionID(bytes: $0) }
    }

    var ngtcp2: ngtcp2_cid {
        var cid = ngtcp2_cid()
        var copy = self
        withUnsafeBytes(of: &copy) { raw in
            withUnsafeMutableBytes(of: &cid.data) { dst in
                dst.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: Int(count))
            }
        }
        cid.datalen = Int(count)
        return cid
    }

    var description: String {
        var copy = self
        return withUnsafeBytes(of: &copy) { raw in
            hexString(raw[0..<Int(count)])
        }
    }
}

/// Cryptographically secure random bytes (connection IDs, reset tokens, secrets).
func secureRandom(_ bytes: inout [UInt8]) {
    let n = bytes.count
    bytes.withUnsafeMutableBytes { buffer in
        secureRandom(buffer.baseAddress!, n)
    }
}

func secureRandom(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
    // GnuTLS's CSPRNG; GNUTLS_RND_RANDOM is appropriate for keys and IDs.
    let rc = gnutls_rnd(GNUTLS_RND_RANDOM, pointer, count)
    precondition(rc == 0, "GnuTLS random generator failed: \(rc)")
}

func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}
