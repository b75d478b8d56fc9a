import Foundation
import Logging
import NIOConcurrencyHelpers

/// The access point's durable state on the local SQLite state file: join tokens, executors,
/// their facts, and the audit (`TokenStore`, `ExecutorStore`, `FactsStore`, `AuditStore`;
/// sessions and events come next).
///
/// Threading: every SQLite call runs on the store's own worker thread (`StoreWorker`), never
/// on the Swift cooperative pool, so a database locked by another process delays only the
/// store's callers, not unrelated tasks. Callers of `async` methods are suspended until
/// their job ran; queued writes (`touch`, `recordFacts`, `recordHistory`, `tunnelStarted`,
/// `tunnelEnded`) return at once. The worker is one thread, so all jobs, awaited or queued,
/// run in the order they were made. `flush()` waits for everything queued so far; `close()`
/// drains the queue and closes the file — the access point calls it at shutdown.
public final class StateStore: Sendable {
    /// How often `executorChanges()` checks for commits by other processes, by default.
    public static let defaultChangeCheckInterval: Duration = .milliseconds(250)

    /// The file this store was opened from.
    public let path: String
    let tables: StateTables
    let worker: StoreWorker
    let logger: Logger
    let changeCheckInterval: Duration
    let watchers = ChangeWatchers()
    /// The last tunnel audit id handed out. Ids are allocated here rather than by the INSERT
    /// so that every attempt gets a unique id at once, even when its row cannot be written
    /// (the access point is the only writer of the tunnel audit).
    private let lastTunnelID: NIOLockedValueBox<Int64>
    /// Executors whose unreadable facts row was already logged.
    private let reportedUnreadableFacts = NIOLockedValueBox<Set<String>>([])

    /// Opens (creating and migrating as needed) the state file at `path`. The opening itself
    /// runs on the store's worker thread too: migrations may wait for another process.
    public static func open(path: String, options: SQLiteOptions = SQLiteOptions(),
                            changeCheckInterval: Duration = defaultChangeCheckInterval,
                            logger: Logger = Logger(label: "ah.store")) async throws -> StateStore {
        let worker = StoreWorker(label: path, logger: logger)
        do {
            let (tables, lastTunnelID) = try await worker.run {
                let tables = try StateTables(path: path, options: options)
                do {
                    return (tables, try tables.highestTunnelID())
                } catch {
                    tables.database.close()
                    throw error
                }
            }
            return StateStore(path: path, tables: tables, worker: worker, lastTunnelID: lastTunnelID,
                              changeCheckInterval: changeCheckInterval, logger: logger)
        } catch {
            await worker.close(finally: {})
            throw error
        }
    }

    private init(path: String, tables: StateTables, worker: StoreWorker, lastTunnelID: Int64,
                 changeCheckInterval: Duration, logger: Logger) {
        self.path = path
        self.tables = tables
        self.worker = worker
        self.lastTunnelID = NIOLockedValueBox(lastTunnelID)
        self.changeCheckInterval = changeCheckInterval
        self.logger = logger
    }

    /// Waits until every write queued before this call has been applied (or has failed and
    /// been logged).
    public func flush() async {
        await worker.flush()
    }

    /// Applies every queued write, ends the change streams and closes the state file. Later
    /// calls throw `StateStoreClosed` (queued writes are dropped and logged). Idempotent.
    public func close() async {
        watchers.finishAll()
        let database = tables.database
        await worker.close(finally: { database.close() })
    }

    // MARK: For the conformances

    /// A read or an awaited write on the worker thread.
    func run<T: Sendable>(_ body: @escaping @Sendable (StateTables) throws -> T) async throws -> T {
        let tables = self.tables
        return try await worker.run { try body(tables) }
    }

    /// A queued write; `what` names it in the log if it fails (never its values).
    func enqueue(_ what: String, _ body: @escaping @Sendable (StateTables) throws -> Void) {
        let tables = self.tables
        worker.enqueue(what) { try body(tables) }
    }

    func nextTunnelID() -> Int64 {
        lastTunnelID.withLockedValue { id -> Int64 in
            id += 1
            return id
        }
    }

    /// Logs an unreadable facts row once per executor and process, not on every listing.
    func reportUnreadableFacts(name: String, error: String) {
        let first = reportedUnreadableFacts.withLockedValue { $0.insert(name).inserted }
        if first {
            logger.warning("ignoring unreadable executor facts", metadata: ["name": "\(name)", "error": "\(error)"])
        }
    }
}
