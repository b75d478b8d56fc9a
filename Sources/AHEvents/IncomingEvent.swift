import Foundation

/// One event as the access point receives and stores it: its JSON exactly as the leader
/// journaled it (one line: SSE sends it as the `data:` line), and the envelope fields read
/// from it. `parse` checks everything the store and the SSE framing rely on.
public struct IncomingEvent: Sendable, Equatable {
    public let seq: Int64
    public let type: String
    public let ts: String
    public let json: String

    public init(seq: Int64, type: String, ts: String, json: String) {
        self.seq = seq
        self.type = type
        self.ts = ts
        self.json = json
    }

    /// Validates one event body of `session`: a JSON object (no raw CR or LF, which JSON only
    /// allows as whitespace and which would end an SSE `data:` line) whose `type` is a valid
    /// name, whose `seq` is positive, whose `ts` is at most 64 bytes and whose `session` is
    /// the batch's. The whole body is checked as JSON (`EnvelopeScanner`), not only those.
    public static func parse(_ bytes: [UInt8], session: String) throws(EventsProtocolError) -> IncomingEvent {
        guard bytes.first == UInt8(ascii: "{") else { throw .badEvent("an event must be one JSON object") }
        guard !bytes.contains(where: { $0 == 0x0A || $0 == 0x0D }) else {
            throw .badEvent("an event must be one line of JSON (no raw line breaks)")
        }
        let envelope: EnvelopeScanner.Envelope
        do { envelope = try EnvelopeScanner.scan(bytes) } catch {
            switch error {
            case .syntax(let offset): throw .badEvent("an event is not valid JSON (at byte \(offset))")
            case .tooDeep: throw .badEvent("an event nests deeper than \(EnvelopeScanner.maxDepth) levels")
            case .invalidUTF8: throw .badEvent("an event is not valid UTF-8")
            case .envelope(let problem):
                throw .badEvent("an event is not a JSON object with string type, ts, session and integer seq (\(problem))")
            }
        }
        guard EventsLimits.isValidType(envelope.type) else {
            throw .badEvent("event type '\(envelope.type.prefix(64))' is not a valid name (a letter, then letters, digits, '.', '-', '_'; at most 64)")
        }
        guard envelope.seq > 0 else { throw .badEvent("event seq \(envelope.seq) must be positive") }
        guard envelope.ts.utf8.count <= EventsLimits.maxTimestampBytes else { throw .badEvent("event ts is longer than 64 bytes") }
        guard envelope.session == session else {
            throw .badEvent("event \(envelope.seq) names session '\(envelope.session.prefix(128))', not the batch's '\(session)'")
        }
        return IncomingEvent(seq: envelope.seq, type: envelope.type, ts: envelope.ts, json: String(decoding: bytes, as: UTF8.self))
    }
}
