import Foundation

// The JSON control messages of the follower helper protocol. Each is one object with a
// `type`; receivers ignore fields they do not know, so optional fields may be added within
// a major version (docs/protocol.md, "Follower helper protocol").

/// The first message each way: the leader's hello, then the helper's answer.
public struct HelperHello: Codable, Sendable, Equatable {
    /// The protocol major version (`HelperWire.protocolVersion`).
    public var version: Int
    /// The sender's `ah` version (informational; only `version` decides compatibility).
    public var ahVersion: String
    /// `linux`, `macos` or `windows`.
    public var os: String
    public var pid: Int32

    public init(version: Int = HelperWire.protocolVersion, ahVersion: String, os: String = HelperHello.currentOS,
                pid: Int32 = Int32(ProcessInfo.processInfo.processIdentifier)) {
        self.version = version
        self.ahVersion = ahVersion
        self.os = os
        self.pid = pid
    }

    public static var currentOS: String {
        #if os(Linux)
        return "linux"
        #elseif os(macOS)
        return "macos"
        #elseif os(Windows)
        return "windows"
        #else
        return "unknown"
        #endif
    }
}

/// Start a command on the follower.
public struct RunRequest: Codable, Sendable, Equatable {
    /// Chosen by the leader: 1 … 2³²−1, unique among the jobs running on this helper.
    public var job: UInt32
    /// The program and its arguments (`argv[0]` is looked up in the helper's PATH).
    public var argv: [String]
    /// Added to (or replacing entries of) the helper's environment.
    public var env: [String: String]
    /// The working directory; nil: the helper's.
    public var cwd: String?
    /// The whole process group is terminated after this long; nil: no limit.
    public var timeoutMillis: Int?

    public init(job: UInt32, argv: [String], env: [String: String] = [:], cwd: String? = nil, timeoutMillis: Int? = nil) {
        self.job = job
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.timeoutMillis = timeoutMillis
    }
}

/// How a job ended.
public struct JobExit: Codable, Sendable, Equatable {
    /// The exit status when the command exited on its own.
    public var exitCode: Int32?
    /// The signal that ended it (`SIGKILL`, `SIGSEGV`, …), when one did.
    public var signal: String?
    /// From spawn to the exit report.
    public var durationMs: Int
    /// The job's timeout expired and the helper terminated its process group.
    public var timedOut: Bool
    /// The leader cancelled the job (or the helper was shutting down).
    public var cancelled: Bool
    /// Set when the command could not be started at all (then no `started` came).
    public var error: String?

    public init(exitCode: Int32? = nil, signal: String? = nil, durationMs: Int, timedOut: Bool = false,
                cancelled: Bool = false, error: String? = nil) {
        self.exitCode = exitCode
        self.signal = signal
        self.durationMs = durationMs
        self.timedOut = timedOut
        self.cancelled = cancelled
        self.error = error
    }
}

/// A refusal or a complaint about something the peer sent.
public struct HelperErrorMessage: Codable, Sendable, Equatable {
    /// One of the codes in docs/protocol.md (`version`, `unknown-type`, `duplicate-job`, …).
    public var code: String
    public var message: String
    /// The job the error is about, when it is about one (its `run` was refused).
    public var job: UInt32?

    public init(code: String, message: String, job: UInt32? = nil) {
        self.code = code
        self.message = message
        self.job = job
    }
}

/// Every control message of protocol version 1.
public enum HelperMessage: Sendable, Equatable {
    case hello(HelperHello)
    case run(RunRequest)
    case cancel(job: UInt32)
    case probe(id: UInt64)
    case probeReply(id: UInt64)
    case started(job: UInt32, pid: Int32)
    case exited(job: UInt32, JobExit)
    case error(HelperErrorMessage)
    /// `slurp-*`: a file set sent to the leader (SlurpMessages.swift).
    case slurp(SlurpMessage)
    /// `sync-*`: a sync fence's messages (SyncMessages.swift).
    case sync(SyncMessage)

    public var type: String {
        switch self {
        case .hello: return "hello"
        case .run: return "run"
        case .cancel: return "cancel"
        case .probe: return "probe"
        case .probeReply: return "probe-reply"
        case .started: return "started"
        case .exited: return "exited"
        case .error: return "error"
        case .slurp(let message): return message.type
        case .sync(let message): return message.type
        }
    }

    /// The message as one JSON object (compact, keys sorted).
    public func jsonBytes() -> [UInt8] {
        if case .sync(.file(let sync, let entry)) = self, let bytes = SyncFileWire.encode(sync: sync, entry: entry) { return bytes }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            switch self {
            case .hello(let hello): data = try encoder.encode(Typed(type: type, body: hello))
            case .run(let request): data = try encoder.encode(Typed(type: type, body: request))
            case .cancel(let job): data = try encoder.encode(Typed(type: type, body: JobRef(job: job)))
            case .probe(let id), .probeReply(let id): data = try encoder.encode(Typed(type: type, body: ProbeBody(id: id)))
            case .started(let job, let pid): data = try encoder.encode(Typed(type: type, body: StartedBody(job: job, pid: pid)))
            case .exited(let job, let exit): data = try encoder.encode(Typed(type: type, body: ExitedBody(job: job, exit: exit)))
            case .error(let error): data = try encoder.encode(Typed(type: type, body: error))
            case .slurp(let message): data = try message.encode(to: encoder)
            case .sync(let message): data = try message.encode(to: encoder)
            }
        } catch {
            // Every field is a string, number, bool or a map of strings: encoding cannot fail.
            preconditionFailure("encoding a follower helper message failed: \(error)")
        }
        return Array(data)
    }

    /// Decodes one message. `.unknownType` for a well-formed object of a type this build does
    /// not know (a newer peer's), `.malformed` for anything else that does not decode.
    public static func decode(_ bytes: [UInt8]) throws(HelperMessageError) -> HelperMessage {
        if let file = SyncFileWire.decode(bytes) { return .sync(file) }
        let data = Data(bytes)
        let decoder = JSONDecoder()
        let type: String
        do {
            type = try decoder.decode(TypeOnly.self, from: data).type
        } catch {
            throw .malformed("not a JSON object with a string `type` (\(bytes.count) bytes)")
        }
        do {
            switch type {
            case "hello": return .hello(try decoder.decode(HelperHello.self, from: data))
            case "run": return .run(try decoder.decode(RunRequest.self, from: data))
            case "cancel": return .cancel(job: try decoder.decode(JobRef.self, from: data).job)
            case "probe": return .probe(id: try decoder.decode(ProbeBody.self, from: data).id)
            case "probe-reply": return .probeReply(id: try decoder.decode(ProbeBody.self, from: data).id)
            case "started":
                let body = try decoder.decode(StartedBody.self, from: data)
                return .started(job: body.job, pid: body.pid)
            case "exited":
                let body = try decoder.decode(ExitedBody.self, from: data)
                return .exited(job: body.job, body.exit)
            case "error": return .error(try decoder.decode(HelperErrorMessage.self, from: data))
            case _ where SlurpMessage.types.contains(type): return .slurp(try SlurpMessage.decode(type: type, data: data, decoder: decoder))
            case _ where SyncMessage.types.contains(type): return .sync(try SyncMessage.decode(type: type, data: data, decoder: decoder))
            default: throw HelperMessageError.unknownType(String(type.prefix(64)))
            }
        } catch let error as HelperMessageError {
            throw error
        } catch {
            throw .malformed("a `\(type)` message with missing or invalid fields (\(Self.describe(error)))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: return "no `\(key.stringValue)`"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?, .dataCorrupted(let context)?:
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "invalid JSON" : "invalid `\(path)`"
        default: return "invalid JSON"
        }
    }
}

public enum HelperMessageError: Error, Equatable, CustomStringConvertible {
    case unknownType(String)
    case malformed(String)

    /// The `error` message code answering it.
    public var code: String {
        switch self {
        case .unknownType: return "unknown-type"
        case .malformed: return "bad-message"
        }
    }

    public var description: String {
        switch self {
        case .unknownType(let type): return "unknown follower helper message type '\(type)'"
        case .malformed(let detail): return "malformed follower helper message: \(detail)"
        }
    }
}

/// `type` plus the body's fields in one flat object (both write into the same container).
private struct Typed<Body: Encodable>: Encodable {
    let type: String
    let body: Body

    private enum CodingKeys: String, CodingKey { case type }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(type, forKey: .type)
        try body.encode(to: encoder)
    }
}

private struct TypeOnly: Decodable { let type: String }
private struct JobRef: Codable { let job: UInt32 }
private struct ProbeBody: Codable { let id: UInt64 }
private struct StartedBody: Codable {
    let job: UInt32
    let pid: Int32
}

/// `exited` is flat on the wire: the job id next to `JobExit`'s fields.
private struct ExitedBody: Codable {
    let job: UInt32
    let exit: JobExit

    private enum CodingKeys: String, CodingKey { case job }

    init(job: UInt32, exit: JobExit) {
        self.job = job
        self.exit = exit
    }

    init(from decoder: any Decoder) throws {
        job = try decoder.container(keyedBy: CodingKeys.self).decode(UInt32.self, forKey: .job)
        exit = try JobExit(from: decoder)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(job, forKey: .job)
        try exit.encode(to: encoder)
    }
}
