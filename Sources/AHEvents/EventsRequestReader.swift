import Foundation
import NIOCore

/// What a leader asks on an uplink stream, once a request is complete.
public enum EventsRequest: Sendable, Equatable {
    case open(session: String)
    case batch(session: String, events: [IncomingEvent])
    case end(session: String)
}

/// The access point's reading side of an uplink stream: turns bytes into `EventsRequest`s,
/// enforcing every bound (frame size, events and bytes per batch, session and type names)
/// as the bytes arrive. Pure state; the caller feeds it and asks for the next request.
public struct EventsRequestReader {
    private var buffer = ByteBuffer()
    /// The batch being read: its session, the events still expected and the bytes so far.
    private var pending: (session: String, remaining: Int, bytes: Int, events: [IncomingEvent])?
    private let decoder = JSONDecoder()

    public init() {}

    /// Bytes received but not yet taken by `next()`.
    public var bufferedBytes: Int { buffer.readableBytes }

    public mutating func feed(_ bytes: inout ByteBuffer) {
        buffer.writeBuffer(&bytes)
    }

    /// The next complete request, nil while more bytes are needed.
    public mutating func next() throws(EventsProtocolError) -> EventsRequest? {
        while true {
            let frame: ByteBuffer
            do {
                guard let next = try EventsFraming.next(from: &buffer) else { return nil }
                frame = next
            } catch let error as EventsProtocolError {
                throw error
            } catch {
                throw .malformed("\(error)")
            }
            let bytes = Array(frame.readableBytesView)
            if var batch = pending {
                // Moved out while it grows: a copy left in `pending` would make every append
                // copy the whole array.
                pending = nil
                batch.bytes += bytes.count
                guard batch.bytes <= EventsLimits.maxBatchBytes else {
                    throw .malformed("a batch's events exceed \(EventsLimits.maxBatchBytes) bytes")
                }
                batch.events.append(try IncomingEvent.parse(bytes, session: batch.session))
                batch.remaining -= 1
                if batch.remaining == 0 {
                    pending = nil
                    return .batch(session: batch.session, events: batch.events)
                }
                pending = batch
                continue
            }
            let header: EventsHeader
            do { header = try decoder.decode(EventsHeader.self, from: Data(bytes)) } catch {
                throw .malformed("a frame is not a JSON object with integer version and string type")
            }
            guard header.version == 1 else { throw .version(header.version) }
            switch header.type {
            case EventsOpen.typeName:
                let open = try decode(EventsOpen.self, bytes)
                try check(session: open.session)
                return .open(session: open.session)
            case EventsEnd.typeName:
                let end = try decode(EventsEnd.self, bytes)
                try check(session: end.session)
                return .end(session: end.session)
            case EventsBatch.typeName:
                let batch = try decode(EventsBatch.self, bytes)
                try check(session: batch.session)
                guard (1...EventsLimits.maxBatchEvents).contains(batch.count) else {
                    throw .malformed("batch count \(batch.count) must be 1…\(EventsLimits.maxBatchEvents)")
                }
                pending = (batch.session, batch.count, 0, [])
                pending!.events.reserveCapacity(batch.count)
            default:
                throw .malformed("unexpected message type '\(header.type.prefix(32))' on an event stream")
            }
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(EventsProtocolError) -> T {
        do { return try decoder.decode(type, from: Data(bytes)) } catch {
            throw .malformed("a \(type) frame lacks a field or has one of the wrong type")
        }
    }

    private func check(session: String) throws(EventsProtocolError) {
        guard EventsLimits.isValidSession(session) else {
            throw .malformed("session id '\(session.prefix(64))' is not 1…\(EventsLimits.maxSessionBytes) letters, digits, '-', '_', '.', ':'")
        }
    }
}
