import AHControl
import Logging
import NIOConcurrencyHelpers

/// The sshd's host keys as last read, kept current: read for every Hello, then again every
/// `interval` while connected and at once when a tunnel reaches an sshd whose keys could not
/// be read (it started after the agent). A change is handed to `watch`'s caller, which
/// reports it to the access point, so strict host key checking works without an agent
/// restart after sshd is started or re-keyed.
final class HostKeyWatch: Sendable {
    private struct State {
        var keys: [SSHHostKey] = []
        /// The last read's failure, logged once per distinct failure rather than every interval.
        var problem: String?
        /// Kicks the watch loop: `true` when a tunnel reached the sshd, `false` for the interval.
        var kick: AsyncStream<Bool>.Continuation?
    }

    private let read: @Sendable () async -> (keys: [SSHHostKey], error: String?)
    private let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(read: @escaping @Sendable () async -> (keys: [SSHHostKey], error: String?), logger: Logger) {
        self.read = read
        self.logger = logger
    }

    /// From `--ssh-host-key` files when given, else `ssh-keyscan` against the policy's sshd;
    /// never anything with ssh disabled.
    convenience init(policy: TunnelPolicy, files: [String], logger: Logger) {
        self.init(read: {
            guard policy.sshEnabled else { return ([], nil) }
            if files.isEmpty { return await SSHHostKeys.scan(policy.sshDestination) }
            do { return (try SSHHostKeys.read(files: files), nil) } catch {
                return ([], "cannot read --ssh-host-key files: \(error)")
            }
        }, logger: logger)
    }

    var current: [SSHHostKey] { state.withLockedValue { $0.keys } }

    /// Reads the keys again; returns them when they differ from the last read.
    @discardableResult
    func refresh() async -> [SSHHostKey]? {
        let (keys, error) = await read()
        let (changed, newProblem) = state.withLockedValue { state -> (Bool, String?) in
            let changed = state.keys != keys
            state.keys = keys
            let newProblem = error != state.problem ? error : nil
            state.problem = error
            return (changed, newProblem)
        }
        if let newProblem {
            logger.warning("cannot read the sshd's host keys; `ah ssh-config` will have none to pin until they can be read",
                           metadata: ["error": "\(newProblem)"])
        }
        return changed ? keys : nil
    }

    /// A tunnel reached the sshd: if its keys could not be read so far, read them now.
    func sshReachable() {
        state.withLockedValue { state in
            if state.keys.isEmpty { state.kick?.yield(true) }
        }
    }

    /// Until cancelled: re-reads every `interval` (and when kicked) and passes changed keys
    /// to `changed`.
    func watch(every interval: Duration, changed: @escaping @Sendable ([SSHHostKey]) -> Void) async {
        let (kicks, kick) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(1))
        state.withLockedValue { $0.kick = kick }
        defer {
            state.withLockedValue { $0.kick = nil }
            kick.finish()
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while (try? await Task.sleep(for: interval)) != nil { kick.yield(false) }
            }
            for await fromTunnel in kicks {
                // A tunnel's kick buffered while the read it asked for was running is
                // answered already once keys are known: no second ssh-keyscan for it.
                if fromTunnel && !current.isEmpty { continue }
                if let keys = await refresh() {
                    logger.info("sshd host keys changed; reporting them", metadata: ["hostKeys": "\(keys.count)"])
                    changed(keys)
                }
            }
            group.cancelAll()
        }
    }
}
