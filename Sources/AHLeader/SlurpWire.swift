import AHFleet
import Foundation

/// `followers slurp`: which file sets, from which followers, to where.
public struct SlurpRequest: Codable, Sendable, Equatable {
    /// In command-line order; names must be unique across them.
    public var sets: [SlurpSetSpec] = []
    /// `--dest` as an absolute path: where sets without their own `dest` go.
    public var dest: String = ""
    public var hosts: [String] = []
    public var tags: [String] = []
    public var all = false

    public init() {}
}

/// One `--fileset-data`/`--fileset-file` set (parsed by the client), or a `--fileset NAME`
/// that the service looks up in the fleet config.
public enum SlurpSetSpec: Codable, Sendable, Equatable {
    case inline(SlurpFileset)
    case named(String)
}

/// A file set as it travels to the service (AHFleet's `Fileset`, with `dest` absolute).
public struct SlurpFileset: Codable, Sendable, Equatable {
    public var name: String
    public var include: [String]
    public var exclude: [String]
    public var required: Bool
    public var dest: String?

    init(_ fileset: Fileset) {
        name = fileset.name
        include = fileset.include
        exclude = fileset.exclude
        required = fileset.required
        dest = fileset.dest
    }
}

/// The client side's parsing of `--fileset-data` and `--fileset-file` (AHFleet), with its
/// errors as exit-2 failures naming the source and field.
public enum SlurpSources {
    public static func data(_ text: String, currentDirectory: String) throws -> SlurpFileset {
        do { return SlurpFileset(try FilesetSource.parseData(text, baseDirectory: currentDirectory)) } catch {
            throw LeaderFailure.usage(error.description)
        }
    }

    public static func file(_ path: String) throws -> [SlurpFileset] {
        do { return try FilesetSource.parseFile(path: path).map(SlurpFileset.init) } catch {
            throw LeaderFailure.usage(error.description)
        }
    }
}

/// `followers slurp --json`: {"filesets":[{"name","required","hosts":[{"name","files":[{"path","size","sha256","dest"}]}],"missing"}]}
/// plus `dest` per set, `status`/`error`/`skipped` per host and `mtime`/`mode` per file.
public struct SlurpReport: Codable, Sendable, Equatable {
    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var size: Int64
        public var sha256: String
        /// Where the file is now on the leader (absolute).
        public var dest: String
        /// RFC 3339 UTC, the follower's modification time (kept on the copy).
        public var mtime: String
        /// Permission bits, octal text (`0755`).
        public var mode: String
    }

    public struct Host: Codable, Sendable, Equatable {
        public enum Status: String, Codable, Sendable {
            /// Sent files that all verified (and were moved into place).
            case ok
            /// Refused the set, sent a file that failed verification, or died mid-transfer.
            case failed
            /// Could not be reached at all.
            case unreachable
        }

        public var name: String
        public var status: Status
        public var files: [File]
        public var error: String?
        /// Paths the follower left out (symlinks leaving the workspace, special files).
        public var skipped: [String]?
    }

    public struct FilesetResult: Codable, Sendable, Equatable {
        public var name: String
        public var required: Bool
        /// The set's destination directory (its files are under `dest/` or `dest/NAME/HOST/`).
        public var dest: String
        /// Followers that answered (their files are in place) and those that failed.
        public var hosts: [Host]
        /// No follower answered with files.
        public var missing: Bool
    }

    public var filesets: [FilesetResult]

    /// 1: a required set is missing or a follower failed mid-way; 3: nothing failed but a
    /// follower was unreachable; else 0 (an optional set may be missing).
    public var exitCode: Int32 {
        if filesets.contains(where: { $0.required && $0.missing }) { return 1 }
        if filesets.contains(where: { $0.hosts.contains { $0.status == .failed } }) { return 1 }
        if filesets.contains(where: { $0.hosts.contains { $0.status == .unreachable } }) { return 3 }
        return 0
    }
}
