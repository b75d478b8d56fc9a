import AHAccessPoint
import AHStore
import ArgumentParser
import Foundation

/// What the load generators (`ah debug enroll-load`, `ah debug registry-load`) share: a
/// watchdog, one many-use join token minted straight into the access point's state file, a
/// scratch directory for the executors' identities, and bounded concurrency.
enum LoadRun {
    /// Ends the process (exit 1) if the run has not finished within `seconds`.
    static func watchdog(seconds: Int, command: String) -> Task<Void, Error> {
        Task.detached {
            try await Task.sleep(nanoseconds: UInt64(seconds) * 1_000_000_000)
            FileHandle.standardError.write(Data("ah: error: \(command) did not finish within \(seconds) s; giving up\n".utf8))
            Foundation.exit(1)
        }
    }

    /// A join token with `uses` uses (as `ah token create` would make it) and the CA pin, from
    /// the access point's data directory.
    static func mintToken(dataDir: String, uses: Int, validFor: TimeInterval, tag: String) async throws -> (token: String, caPin: String) {
        let directory: AccessPointDataDirectory
        do {
            directory = try AccessPointDataDirectory.open(path: dataDir, trustDomain: nil, create: false)
        } catch {
            throw CLIError.usage("\(error)")
        }
        let store = try await StateStore.open(path: directory.statePath)
        let minted = JoinTokens.mint()
        let now = Date()
        try await store.createJoinToken(id: minted.id, hash: minted.hash, expiresAt: now.addingTimeInterval(validFor),
                                        uses: uses, tags: ["bench": tag], now: now)
        await store.close()
        return (minted.token, directory.caPin)
    }

    static func scratchDirectory(prefix: String) throws -> String {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CLIError.failed("cannot create a scratch directory under \(base): errno \(errno)")
        }
        return String(cString: made)
    }

    /// Runs `body(0..<count)` with at most `width` in flight; results in index order.
    static func concurrently<T: Sendable>(count: Int, width: Int, _ body: @escaping @Sendable (Int) async -> T) async -> [T] {
        await withTaskGroup(of: (Int, T).self) { group in
            var results = [T?](repeating: nil, count: count)
            var next = 0
            while next < min(width, count) {
                let index = next
                group.addTask { (index, await body(index)) }
                next += 1
            }
            while let (index, value) = await group.next() {
                results[index] = value
                if next < count {
                    let index = next
                    group.addTask { (index, await body(index)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }

    static func seconds(_ from: DispatchTime, _ to: DispatchTime) -> Double {
        Double(to.uptimeNanoseconds - from.uptimeNanoseconds) / 1e9
    }
}

/// An append-only list shared by concurrent tasks.
final class LockedList<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Element] = []

    func append(_ element: Element) { lock.withLock { storage.append(element) } }
    var items: [Element] { lock.withLock { storage } }
}

/// The access point a load generator drives: its QUIC address and its data directory (the
/// generators mint their join token and read the CA pin there).
struct LoadTargetOptions: ParsableArguments {
    @Option(name: .customLong("remote-server"), help: ArgumentHelp("The access point, quic://HOST:PORT.", valueName: "url"))
    var remoteServer: String

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The running access point's data directory (for the token and the CA pin).", valueName: "dir"))
    var dataDir: String

    func validate() throws { _ = try remote() }

    func remote() throws -> HostPort { try HostPort.quicRemote(remoteServer) }
}
