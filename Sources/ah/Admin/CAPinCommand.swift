import AHAccessPoint
import ArgumentParser

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "The access point's certificate authority.",
        subcommands: [CAPinCommand.self]
    )
}

struct CAPinCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin",
        abstract: "Print sha256:HEX of the CA certificate, for executors' --ca-pin."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("data-dir"), help: ArgumentHelp("The access point's data directory.", valueName: "dir"))
    var dataDir: String

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    func run() async throws {
        let directory = try ExistingDataDirectory.open(dataDir)
        if json {
            printJSON(["pin": directory.caPin, "trustDomain": directory.trustDomain])
        } else {
            print(directory.caPin)
        }
    }
}
