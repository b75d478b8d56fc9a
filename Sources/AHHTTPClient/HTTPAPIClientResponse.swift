import AHAPI
import Foundation
import NIOHTTP1

/// A complete response from the access point.
public struct HTTPAPIClientResponse: Sendable {
    public let status: HTTPResponseStatus
    public let headers: HTTPHeaders
    public let body: [UInt8]

    public init(status: HTTPResponseStatus, headers: HTTPHeaders, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The Problem+JSON document of an error response, if the body is one.
    public var problem: Problem? { try? JSONDecoder().decode(Problem.self, from: Data(body)) }

    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoder().decode(type, from: Data(body))
    }
}
