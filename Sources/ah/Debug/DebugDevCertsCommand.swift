import AHIdentity
import ArgumentParser
import Foundation

/// `ah debug dev-certs`: a throwaway CA and SVIDs for local development and demos.
///
/// All the work is in `AHIdentity.DevCerts` (tested there); this file only maps flags to it,
/// prints the outcome, and turns bad input into `CLIError.usage` (exit 2, one line naming the value).
struct DebugDevCertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-certs",
        abstract: "Create a development CA and SPIFFE X.509 certificates (never for production).",
        discussion: """
            Writes ca.pem (trust bundle), ca-key.pem (0600) and, for each --id, \
            <last-segment>.pem and <last-segment>-key.pem (0600) into --out. An existing \
            ca.pem/ca-key.pem pair in --out is reused unless --new-ca is given, so that \
            certificates already handed out stay valid.
            """
    )

    @Option(name: .customLong("out"), help: ArgumentHelp("Output directory (created with mode 0700).", valueName: "dir"))
    var out: String

    @Option(name: .customLong("trust-domain"), help: ArgumentHelp("SPIFFE trust domain.", valueName: "td"))
    var trustDomain: String = "example.org"

    @Option(
        name: .customLong("id"),
        help: ArgumentHelp(
            "SPIFFE ID to issue a certificate for; repeatable. Default: spiffe://TD/ah/serve and spiffe://TD/ah/agent/dev.",
            valueName: "spiffe-id"
        )
    )
    var ids: [String] = []

    // Parsed by hand so that a non-number is exit code 2 like every other bad value.
    @Option(name: .customLong("days"), help: ArgumentHelp("Certificate lifetime in days.", valueName: "n"))
    var days: String = "30"

    @Flag(name: .customLong("new-ca"), help: "Create a new CA even if --out already holds one.")
    var newCA = false

    @Flag(name: .customLong("json"), help: "Print one JSON document instead of text.")
    var json = false

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let result: DevCerts.Result
        do {
            guard !out.isEmpty else { throw DevCerts.InputError("bad --out \"\": must not be empty") }
            guard let dayCount = Int(days) else {
                throw DevCerts.InputError("bad --days \"\(days)\": not a whole number")
            }
            let validIDs = try DevCerts.validate(trustDomain: trustDomain, ids: ids, days: dayCount)
            result = try DevCerts.generate(
                directory: URL(fileURLWithPath: out, isDirectory: true),
                trustDomain: trustDomain, ids: validIDs, days: dayCount, newCA: newCA
            )
        } catch let error as DevCerts.InputError {
            // Exit 2 with one line naming the bad value (shared/cli.md).
            throw CLIError.usage("debug dev-certs: \(error.description)")
        }
        json ? try printJSON(result) : printText(result)
    }

    private func printText(_ result: DevCerts.Result) {
        if result.caReused {
            print("reused CA    \(result.caPath)")
        } else {
            print("wrote CA     \(result.caPath)")
            print("wrote CA key \(result.caKeyPath) (0600)")
        }
        for identity in result.identities {
            print("wrote cert   \(identity.certPath)  \(identity.id)")
            print("wrote key    \(identity.keyPath) (0600)")
        }
        print("trust domain \(result.trustDomain)")
        print("CA pin       \(result.caPin)")
    }

    private func printJSON(_ result: DevCerts.Result) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
    }
}
