import AHAccessPoint
import AHStore
import ArgumentParser
import Foundation

struct ExecutorsRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke an executor's identity: its live connection closes within a second.",
        discussion: "Every later renewal and reconnect of that identity is refused until it enrolls again with a new token."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The executor's name.")
    var name: String

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The access point's data directory.", valueName: "dir"))
    var dataDir: String

    @Option(help: "Why (recorded in the history).")
    var reason: String = "revoked by operator"

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func run() async throws {
        let (_, store) = try await ExistingDataDirectory.openStore(dataDir)
        let changed: Bool
        do {
            changed = try await store.revoke(name: name, reason: reason, now: Date())
        } catch let error as IdentityStoreError {
            throw CLIError.usage("executor '\(name)': \(error)")
        }
        await store.close()
        if json {
            printJSON(["name": name, "revoked": true, "alreadyRevoked": !changed])
        } else {
            print(changed ? "revoked \(name)" : "\(name) was already revoked")
        }
    }
}
