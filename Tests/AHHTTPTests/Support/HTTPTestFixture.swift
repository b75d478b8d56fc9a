import AHAuth
import AHHTTPClient
@testable import AHHTTPServer
import AHSPIFFE
import AHStore
import AHTestSupport
import Foundation

/// An HTTPAPIServer on 127.0.0.1 (port 0) over a real SQLite state file in a temp directory,
/// with the key in that directory as `ah serve` would have it.
final class HTTPTestFixture: @unchecked Sendable {
    let directory: TemporaryDirectory
    let store: StateStore
    let authority: UserTokenAuthority
    let server: HTTPAPIServer

    var port: Int { server.port }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
         directory makeDirectory: ((StateStore) -> any ExecutorDirectory)? = nil,
         readiness: @escaping @Sendable () async -> Bool = { true }) async throws {
        directory = try TemporaryDirectory(prefix: "ah-http")
        store = try await StateStore.open(path: directory.file("state.sqlite").path)
        authority = try await UserTokenAuthority.loadOrCreate(dataDirectory: directory.path)
        let executors = makeDirectory?(store) ?? StoreExecutorDirectory(store: store)
        let routes = HTTPAPIRoutes(authority: authority, executors: executors, readiness: readiness)
        server = try await HTTPAPIServer.start(host: "127.0.0.1", port: 0, routes: routes, configuration: configuration)
    }

    func shutdown() async {
        await server.close()
        await store.close()
    }

    var client: HTTPAPIClient {
        HTTPAPIClient(server: try! APIServerURL(parsing: baseURL), timeout: .seconds(10))
    }

    func token(_ role: Role = .viewer, subject: String = "alice") async throws -> String {
        try await authority.mint(subject: subject, role: role, ttl: 600)
    }

    /// Enrolls `name` with fixed times (whole seconds) so the JSON is predictable.
    @discardableResult
    func enroll(_ name: String, tags: [String: String] = [:], at time: Date = fixedTime) async throws -> ExecutorRecord {
        try await store.enroll(name: name, spiffeID: try SPIFFEID.agent(trustDomain: "example.org", name: name),
                         publicKeySHA256: Array(repeating: UInt8(name.count), count: 32), tags: tags,
                         certSerial: "01", certNotAfter: time.addingTimeInterval(3600), now: time).executor
    }
}

/// 2023-11-14T22:13:20Z.
let fixedTime = Date(timeIntervalSince1970: 1_700_000_000)

/// A JSON object's keys and values, for exact-shape assertions.
func jsonObject(_ bytes: [UInt8]) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw RawSocketError("not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
    }
    return object
}
