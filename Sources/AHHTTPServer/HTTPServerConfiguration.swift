import NIOCore
import NIOHTTP1

/// Limits that keep one client from holding memory or connections hostage.
public struct HTTPServerConfiguration: Sendable {
    /// Request line + header fields. NIO counts the target and the field names and values
    /// (not separators); with `maxHeaderCount` that bounds the head to about this size.
    /// Beyond it: 431 Problem+JSON and close.
    public var maxRequestHeadBytes: Int = 8 * 1024
    /// Header fields per request: many tiny fields would otherwise cost more than they count.
    public var maxHeaderCount: Int = 100
    /// Bodies of API requests. Beyond it: 413 Problem+JSON and close.
    public var maxBodyBytes: Int = 64 * 1024
    /// How long a client may take to send a complete request (head and body), counted from
    /// the moment we wait for one: right after accept, and after each response on a
    /// keep-alive connection (so it is also the keep-alive idle limit). Then: close.
    public var headerReadTimeout: TimeAmount = .seconds(10)
    /// Listen backlog.
    public var backlog: Int32 = 256
    /// Open connections (REST and tunnels) at once. Beyond it a new connection is closed at
    /// once (logged once per episode): each costs a file descriptor and buffers, and running
    /// out of descriptors would stop readyz and every tunnel alike.
    public var maxConnections: Int = 1024
    /// Bytes a client may send after a CONNECT head before its tunnel exists (that is, before
    /// it is authenticated). Reading stops at the head; what one read cycle already brought
    /// beyond this bound is dropped and the CONNECT answered 400.
    public var maxPreTunnelBytes: Int = 64 * 1024
    /// How long to stop accepting after `accept` failed for lack of resources (out of file
    /// descriptors, memory): retrying at once would spin a core.
    public var acceptBackoff: TimeAmount = .milliseconds(250)

    public init() {}

    var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = maxRequestHeadBytes
        limits.maxHeaderFieldSize = maxRequestHeadBytes
        limits.maxHeaderFieldCount = maxHeaderCount
        return limits
    }
}
