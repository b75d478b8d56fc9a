import Foundation
import NIOCore

/// A received control message before it is decoded into its type: the header says which
/// type, `decode` gives it. Keeping the raw JSON lets one stream carry several message types.
public struct ControlFrame: Sendable {
    public let header: MessageHeader
    public let body: Data

    public init(body: Data) throws {
        self.header = try Frame.decodeBody(MessageHeader.self, body)
        self.body = body
    }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try Frame.decodeBody(type, body)
    }

    /// For streams whose first frame has one fixed meaning (a tunnel's open-tcp and its
    /// result): takes the next frame off `buffer`, checks it is `type` of this protocol
    /// version and decodes it; nil while the frame is incomplete.
    public static func next<T: Decodable>(_ message: T.Type, type: String, from buffer: inout ByteBuffer) throws -> T? {
        guard let body = try Frame.nextBody(from: &buffer) else { return nil }
        let frame = try ControlFrame(body: body)
        guard frame.header.version == ControlProtocol.version, frame.header.type == type else {
            throw FrameError.malformed("expected \(type) version \(ControlProtocol.version), got \(frame.header.type.prefix(32)) version \(frame.header.version)")
        }
        return try frame.decode(message)
    }
}

/// Splits a stream of bytes into `ControlFrame`s, refusing any frame over the bound as soon
/// as its length prefix is seen (nothing oversized is ever buffered).
public struct ControlFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ControlFrame

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let body = try Frame.nextBody(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(try ControlFrame(body: body)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw FrameError.truncated }
        return .needMoreData
    }
}

/// Splits a stream of bytes into frames and decodes each as `Message` in one JSON pass
/// (`ExecutorControlMessage` on the access point's control streams). Same bound as
/// `ControlFrameDecoder`; a frame that does not decode is an error of the stream.
public struct ControlMessageDecoder<Message: Decodable>: ByteToMessageDecoder {
    public typealias InboundOut = Message
    /// One per stream (a stream lives on one event loop), reused for every frame.
    private let json = Frame.makeDecoder()

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let body = try Frame.nextBody(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(try Frame.decodeBody(Message.self, body, using: json)))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw FrameError.truncated }
        return .needMoreData
    }
}
