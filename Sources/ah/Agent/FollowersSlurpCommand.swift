import AHLeader
import ArgumentParser
import Foundation

/// `ah agent followers slurp`: fetch file sets (build artifacts) from the followers,
/// verified and moved into place atomically. The sets are parsed here (their relative
/// paths are this directory's); the leader service does the transfers.
struct FollowersSlurpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurp",
        abstract: "Fetch file sets (build artifacts) from the followers into a local directory.",
        discussion: """
            ah agent followers slurp (--fileset-data DATA | --fileset NAME | --fileset-file PATH)... [--dest DIR] [--json]
            Every follower is asked for every set; paths and globs (*, ?, [...], **) are relative \
            to its workspace, a directory brings its tree. Files land in a staging directory \
            beside the destination, each verified by SHA-256, and are moved into place only \
            then: into DIR when one follower answered, into DIR/NAME/FOLLOWER when several did. \
            Exit 1 when a required set is found on no follower or a follower failed mid-way; \
            2 for a bad set (the field is named); 3 when nothing failed but a follower was unreachable.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var leader: LeaderOptions

    @Option(name: .customLong("fileset-data"),
            help: ArgumentHelp("A set, URL-encoded: name=N&include=GLOB&include=...&exclude=GLOB&required=yes&dest=DIR; repeatable.",
                               valueName: "data"))
    var filesetData: [String] = []

    @Option(name: .customLong("fileset"), help: ArgumentHelp("A [filesets.NAME] of the fleet config; repeatable.", valueName: "name"))
    var filesetNames: [String] = []

    @Option(name: .customLong("fileset-file"),
            help: ArgumentHelp("A TOML or JSON file with one set or a list of sets; repeatable.", valueName: "path"))
    var filesetFiles: [String] = []

    @Option(help: ArgumentHelp("Where sets without their own dest go (default: the current directory).", valueName: "dir"))
    var dest: String?

    @Option(name: .customLong("host"), help: ArgumentHelp("Ask only this follower; repeatable (adds hosts).", valueName: "name"))
    var hosts: [String] = []

    @Option(name: .customLong("tag"), help: ArgumentHelp("Ask only followers with KEY=VALUE; repeatable (all must match).", valueName: "key=value"))
    var tags: [String] = []

    @Flag(help: "Every follower (the default when no selector is given).")
    var all = false

    @Flag(help: "Print {\"filesets\":[...]} as JSON.")
    var json = false

    func validate() throws {
        if filesetData.isEmpty && filesetNames.isEmpty && filesetFiles.isEmpty {
            throw ValidationError("give at least one --fileset-data DATA, --fileset NAME or --fileset-file PATH")
        }
    }

    func run() async throws {
        let cwd = FileManager.default.currentDirectoryPath
        var request = SlurpRequest()
        request.hosts = hosts
        request.tags = tags
        request.all = all
        request.dest = URL(fileURLWithPath: dest.map { ($0 as NSString).expandingTildeInPath } ?? cwd,
                           relativeTo: URL(fileURLWithPath: cwd, isDirectory: true)).standardizedFileURL.path
        do {
            for source in Self.ordered(data: filesetData, names: filesetNames, files: filesetFiles) {
                switch source {
                case .data(let text): request.sets.append(.inline(try SlurpSources.data(text, currentDirectory: cwd)))
                case .name(let name): request.sets.append(.named(name))
                case .file(let path): request.sets += try SlurpSources.file(path).map(SlurpSetSpec.inline)
                }
            }
        } catch let failure as LeaderFailure {
            throw CLIError.usage(failure.description)
        }
        let result = try await leader.send(.slurp(request)) { printProgress($0) }
        guard case .slurp(let report) = result else { throw CLIError.failed("the leader service answered with something else") }
        if json {
            printJSONDocument(report)
        } else {
            print(Self.text(report), terminator: "")
        }
        for set in report.filesets where set.missing && set.required {
            FileHandle.standardError.write(Data("ah: the required file set '\(set.name)' was found on no follower\n".utf8))
        }
        fflush(nil)
        if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    enum Source: Equatable {
        case data(String)
        case name(String)
        case file(String)
    }

    /// The sets in the order they were given (the report keeps it), recovered from argv
    /// since the parser groups each option's values; grouped order if argv cannot tell.
    static func ordered(data: [String], names: [String], files: [String],
                        arguments: [String] = CommandLine.arguments) -> [Source] {
        let grouped = data.map(Source.data) + names.map(Source.name) + files.map(Source.file)
        var found: [Source] = []
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            for (flag, make) in [("--fileset-data", Source.data), ("--fileset", Source.name), ("--fileset-file", Source.file)] {
                if word == flag, index + 1 < arguments.count {
                    found.append(make(arguments[index + 1]))
                    index += 1
                } else if word.hasPrefix(flag + "=") {
                    found.append(make(String(word.dropFirst(flag.count + 1))))
                }
            }
            if word == "--" { break }
            index += 1
        }
        return found.count == grouped.count && Set(found.map { "\($0)" }) == Set(grouped.map { "\($0)" }) ? found : grouped
    }

    /// One line per set and host, then a summary line.
    static func text(_ report: SlurpReport) -> String {
        var lines: [String] = []
        var files = 0
        var bytes: Int64 = 0
        for set in report.filesets {
            if set.missing {
                lines.append("\(set.name): missing\(set.required ? " (required)" : ""): no follower answered")
            }
            for host in set.hosts {
                switch host.status {
                case .ok where !host.files.isEmpty:
                    let size = host.files.reduce(Int64(0)) { $0 + $1.size }
                    files += host.files.count
                    bytes += size
                    let base = set.hosts.filter { !$0.files.isEmpty }.count > 1 ? "\(set.dest)/\(set.name)/\(host.name)" : set.dest
                    lines.append("\(set.name): \(host.name): \(host.files.count) file\(host.files.count == 1 ? "" : "s"), "
                        + "\(Self.size(size)) -> \(base)")
                case .ok:
                    break
                case .failed, .unreachable:
                    lines.append("\(set.name): \(host.name): \(host.status.rawValue): \(host.error ?? "")")
                }
                for skipped in host.skipped ?? [] { lines.append("\(set.name): \(host.name): skipped \(skipped)") }
            }
        }
        let missing = report.filesets.filter(\.missing).count
        lines.append("\(report.filesets.count) file set\(report.filesets.count == 1 ? "" : "s"), \(files) file\(files == 1 ? "" : "s"), "
            + "\(Self.size(bytes)), \(missing) missing")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Bytes for people: B, KiB, MiB, GiB with one decimal.
    static func size(_ bytes: Int64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        var value = Double(bytes)
        for unit in ["KiB", "MiB", "GiB", "TiB"] {
            value /= 1024
            if value < 1024 || unit == "TiB" { return String(format: "%.1f", value) + " " + unit }
        }
        return "\(bytes) B"
    }
}
