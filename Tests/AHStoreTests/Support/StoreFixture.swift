import AHSPIFFE
@testable import AHStore
import AHTestSupport
import Foundation

/// A state file in a fresh temporary directory, plus fixed times and fake hashes, so every
/// test works on a real SQLite file that nothing else touches.
final class StoreFixture: Sendable {
    let directory: TemporaryDirectory
    let path: String

    init() throws {
        directory = try TemporaryDirectory(prefix: "ah-store")
        path = directory.file("state.sqlite").path
    }

    /// A new connection to the same file (as a second process would have), through the
    /// synchronous tables `StateStore` runs on its worker thread.
    func openTables(options: SQLiteOptions = SQLiteOptions()) throws -> StateTables {
        try StateTables(path: path, options: options)
    }

    /// The store as the access point opens it.
    func openStore(options: SQLiteOptions = SQLiteOptions(),
                   changeCheckInterval: Duration = StateStore.defaultChangeCheckInterval) async throws -> StateStore {
        try await StateStore.open(path: path, options: options, changeCheckInterval: changeCheckInterval)
    }

    func openDatabase(options: SQLiteOptions = SQLiteOptions()) throws -> SQLiteDatabase {
        try SQLiteDatabase(path: path, options: options)
    }
}

/// Whole seconds, so values survive the millisecond round trip unchanged.
let t0 = Date(timeIntervalSince1970: 1_700_000_000)

func at(_ seconds: TimeInterval) -> Date { t0.addingTimeInterval(seconds) }

/// Stand-in for SHA-256 (the store takes hashes computed by its caller): 32 distinct bytes per input.
func fakeHash(_ text: String) -> [UInt8] {
    var bytes = Array(text.utf8.prefix(32))
    while bytes.count < 32 { bytes.append(UInt8(bytes.count)) }
    return bytes
}

func agentID(_ name: String) throws -> SPIFFEID {
    try SPIFFEID.agent(trustDomain: "example.org", name: name)
}

/// A counter safe to bump from several threads.
final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]

    func add(_ key: String) {
        lock.lock()
        counts[key, default: 0] += 1
        lock.unlock()
    }

    subscript(key: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return counts[key, default: 0]
    }
}
