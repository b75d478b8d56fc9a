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

    public init() {}

    var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = maxRequestHeadBytes
        limits.maxHeaderFieldSize = maxRequestHeadBytes
        limits.maxHeaderFieldCount = maxHeaderCount
        return limits
    }
}
