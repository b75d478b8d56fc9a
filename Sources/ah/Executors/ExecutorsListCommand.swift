import AHAPI
import AHHTTPClient
import ArgumentParser
import Foundation

/// `ah executors list`: `GET /api/v1/executors` on a running access point.
struct ExecutorsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the executors of an access point and their state.",
        discussion: "Needs a token with role viewer or higher (see `ah user token`)."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("remote-server"), help: ArgumentHelp("The access point's HTTP API, e.g. http://HOST:8443.", valueName: "url"))
    var remoteServer: String

    @Option(name: .customLong("token-file"), help: ArgumentHelp("File holding the user JWT from `ah user token` (keeps it off the command line).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("User JWT from `ah user token` (visible to other users in ps; prefer --token-file or AH_TOKEN_FILE).", valueName: "jwt"))
    var token: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM CA bundle for an https:// access point (default: system trust).", valueName: "pem"))
    var caFile: String?

    @Flag(help: "Print the API's JSON document instead of a table.")
    var json = false

    func validate() throws {
        do { _ = try APIServerURL(parsing: remoteServer) } catch { throw ValidationError(error.description) }
        guard token != nil || tokenFile != nil else {
            throw ValidationError("give --token-file (or --token, or AH_TOKEN_FILE): listing executors needs a viewer token")
        }
        if let token, token.isEmpty || token.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--token must be a JWT without spaces")
        }
    }

    func run() async throws {
        let token = try ClientOptions.token(token, file: tokenFile)
        var client = HTTPAPIClient(server: try APIServerURL(parsing: remoteServer))
        client.tls = try ClientOptions.tls(for: client.server, caFile: caFile)
        let response: HTTPAPIClientResponse
        do {
            response = try await client.get("/api/v1/executors", bearerToken: token)
        } catch {
            switch error {
            case .invalidURL: throw CLIError.usage(error.description)
            case .connectionFailed, .timedOut: throw CLIError.unreachable(error.description)
            case .malformedResponse, .responseTooLarge: throw CLIError.failed(error.description)
            }
        }
        guard response.status == .ok else { throw Self.failure(for: response) }
        let list: ExecutorList
        do { list = try response.decode(ExecutorList.self) } catch {
            throw CLIError.failed("the server's executor list is not in the expected shape: \(error)")
        }
        if json {
            // Verbatim: the API's document is the contract; re-encoding could drift from it.
            var text = String(decoding: response.body, as: UTF8.self)
            if !text.hasSuffix("\n") { text += "\n" }
            FileHandle.standardOutput.write(Data(text.utf8))
        } else {
            print(ExecutorTable.render(list.items), terminator: "")
        }
    }

    /// 401/403 and an unavailable server are "not authorized / not reachable" (exit 3); any
    /// other status means the request itself failed (exit 1).
    static func failure(for response: HTTPAPIClientResponse) -> CLIError {
        let detail = response.problem?.detail ?? "HTTP \(response.status.code) \(response.status.reasonPhrase)"
        switch response.status.code {
        case 401: return .unreachable("not authorized: \(detail)")
        case 403: return .unreachable("forbidden: \(detail)")
        case 502, 503, 504: return .unreachable("access point unavailable: \(detail)")
        default: return .failed("HTTP \(response.status.code): \(detail)")
        }
    }
}

/// The human-readable listing: aligned columns, "-" for no value.
enum ExecutorTable {
    static let header = ["NAME", "SPIFFE ID", "STATE", "TAGS", "CERT EXPIRES", "LAST SEEN"]

    static func render(_ items: [ExecutorView]) -> String {
        let rows = [header] + items.map { item in
            [item.name, item.spiffeId, item.state.rawValue,
             item.tags.isEmpty ? "-" : item.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","),
             item.certNotAfter ?? "-", item.lastSeen ?? "-"]
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
