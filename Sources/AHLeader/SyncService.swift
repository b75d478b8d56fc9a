import AHSync
import Foundation
import Logging

/// The leader's side of the sync that outlives one request: the workspace's scanner (its
/// stat cache is what makes a fence after one edit cheap), the content store of snapshots,
/// and per follower the manifest it was last proven to hold (so the next fence needs no
/// listing of the follower's tree when its root hash still matches).
///
/// The leader workspace is the leader member's `workspace` when the fleet config names one;
/// else the directory holding `.agents/config.toml`; a config elsewhere (`--fleet-config
/// FILE`) with no leader workspace has none, and then there is nothing to fence.
actor SyncService {
    let workspace: String?
    let ignores: IgnoreMatcher
    let timeout: Duration
    let retention: Int
    let storeDirectory: String
    let logger: Logger
    private var scanner: TreeScanner?
    private var store: ContentStore?
    private var held: [String: Manifest] = [:]

    init(fleet: LeaderFleet, paths: LeaderPaths, logger: Logger) {
        workspace = Self.leaderWorkspace(config: fleet.config.file, leaderWorkspace: fleet.config.leader?.workspace)
        ignores = IgnoreMatcher(patterns: fleet.config.settings.sync.ignores)
        timeout = fleet.config.settings.sync.timeout
        retention = fleet.config.settings.sync.retention
        storeDirectory = paths.stateDirectory.appendingPathComponent("sync-\(paths.key)").path
        self.logger = logger
    }

    static func leaderWorkspace(config: String, leaderWorkspace: String?, home: String = NSHomeDirectory()) -> String? {
        if var workspace = leaderWorkspace, !workspace.isEmpty {
            if workspace == "~" || workspace.hasPrefix("~/") { workspace = home + workspace.dropFirst() }
            return URL(fileURLWithPath: workspace).standardizedFileURL.path
        }
        let file = URL(fileURLWithPath: config).standardizedFileURL
        let agents = file.deletingLastPathComponent()
        guard file.lastPathComponent == "config.toml", agents.lastPathComponent == ".agents" else { return nil }
        return agents.deletingLastPathComponent().path
    }

    func contentStore() throws -> ContentStore {
        if let store { return store }
        let made = try ContentStore(directory: storeDirectory, retention: retention)
        store = made
        return made
    }

    /// Scans the workspace (stat cache), puts new contents into the store and (unless `save`
    /// is false: the caller saves it with `save(_:in:)` meanwhile) saves the manifest as a snapshot.
    func snapshot(save: Bool = true) throws -> (result: ScanResult, store: ContentStore) {
        guard let workspace else {
            throw LeaderFailure.usage("there is no leader workspace to fence: the fleet config is not WORKSPACE/.agents/config.toml "
                                      + "and no member with role = \"leader\" has a workspace")
        }
        let store = try contentStore()
        let scanner: TreeScanner
        if let existing = self.scanner {
            scanner = existing
        } else {
            scanner = TreeScanner(root: workspace, ignores: ignores, store: store)
            // inotify marks changed directories while the service runs (a full walk without it).
            scanner.watcher = DirtyWatcher(root: workspace)
            self.scanner = scanner
        }
        do {
            let started = ContinuousClock.now
            let result = try scanner.scan()
            let scanned = ContinuousClock.now
            if save { try store.save(result.manifest) }
            var metadata: Logger.Metadata = [
                "snapshot": "\(result.manifest.rootHash.prefix(19))", "entries": "\(result.manifest.count)",
                "hashedFiles": "\(result.hashedFiles)", "scanMs": "\((scanned - started).milliseconds)",
            ]
            if save { metadata["saveMs"] = "\((ContinuousClock.now - scanned).milliseconds)" }
            logger.debug("Snapshot taken", metadata: metadata)
            for skipped in result.skipped.prefix(20) { logger.warning("not synced: \(skipped)") }
            return (result, store)
        } catch {
            // The scanner forgets its incremental state on a failure: the next scan walks everything.
            throw LeaderFailure(exitCode: 1, "cannot snapshot the leader workspace \(workspace): \(error)")
        }
    }

    /// Saves a snapshot into the store off the actor (followers' syncs go on meanwhile).
    nonisolated func save(_ manifest: Manifest, in store: ContentStore) throws {
        let started = ContinuousClock.now
        do {
            try store.save(manifest)
        } catch {
            throw LeaderFailure(exitCode: 1, "cannot save the snapshot \(manifest.rootHash) of the leader workspace \(workspace ?? ""): \(error)")
        }
        logger.debug("Snapshot saved", metadata: ["snapshot": "\(manifest.rootHash.prefix(19))",
                                                  "saveMs": "\((ContinuousClock.now - started).milliseconds)"])
    }

    func manifest(heldBy follower: String) -> Manifest? { held[follower] }

    func record(_ manifest: Manifest?, heldBy follower: String) { held[follower] = manifest }

    /// Restores the workspace to a stored snapshot (seek); the scanner's cache stays valid
    /// (rewritten files have new stats and are hashed again).
    func restore(_ snapshotId: String) throws {
        guard let workspace else { throw LeaderFailure.usage("there is no leader workspace to restore") }
        let store = try contentStore()
        do {
            try store.restore(snapshotId, into: workspace, ignores: ignores)
        } catch {
            throw LeaderFailure(exitCode: 1, "cannot restore \(snapshotId) into \(workspace): \(error)")
        }
    }
}
