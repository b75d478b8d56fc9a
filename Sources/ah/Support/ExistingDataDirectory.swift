import AHAccessPoint
import AHStore

/// Admin commands run next to an access point on its data directory. A missing or foreign
/// directory is bad input (exit 2) naming the path, never a crash or a new empty state.
enum ExistingDataDirectory {
    static func open(_ path: String) throws -> AccessPointDataDirectory {
        do {
            return try AccessPointDataDirectory.open(path: path, trustDomain: nil, create: false)
        } catch {
            throw CLIError.usage("\(error)")
        }
    }

    /// The directory and its state file.
    static func openStore(_ path: String) async throws -> (AccessPointDataDirectory, StateStore) {
        let directory = try open(path)
        do {
            return (directory, try await StateStore.open(path: directory.statePath))
        } catch {
            throw CLIError.failed("cannot open the state file \(directory.statePath): \(error)")
        }
    }
}
