// Where things are when tests run: the built `ah`, the package's own files (the interop
// scripts), tools on PATH (python3, ngtcp2's examples), and throw-away directories.

import Foundation

public enum BuiltProducts {
    public enum LookupError: Error, CustomStringConvertible {
        case notFound(String, searched: [String])

        public var description: String {
            switch self {
            case .notFound(let name, let searched):
                return "the built `\(name)` was not found (looked in: \(searched.joined(separator: ", "))); "
                    + "build it with `swift build` (or `swift test`, which builds it) or set AH_BINARY to its path"
            }
        }
    }

    /// The `ah` executable under test: `$AH_BINARY` if set, otherwise the one built next
    /// to the test bundle (`swift test` builds it: the test target depends on `ah`).
    public static func ah() throws -> URL {
        if let override = ProcessInfo.processInfo.environment["AH_BINARY"], !override.isEmpty {
            let url = URL(fileURLWithPath: override)
            guard FileManager.default.isExecutableFile(atPath: url.path) else {
                throw LookupError.notFound("ah", searched: ["AH_BINARY=\(override)"])
            }
            return url
        }
        return try executable(named: "ah")
    }

    /// An executable product built into the same directory as the test bundle.
    public static func executable(named name: String) throws -> URL {
        let candidates = productsDirectories.map { $0.appendingPathComponent(name) }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
        throw LookupError.notFound(name, searched: candidates.map(\.path))
    }

    /// Directories the build products may be in, most likely first.
    /// - Linux: the XCTest runner is `.build/<config>/ahPackageTests.xctest`, an executable,
    ///   so products are next to `Bundle.main.executableURL` / `argv[0]`.
    /// - macOS: the `.xctest` bundle is loaded by `xctest`; products are next to the bundle.
    public static var productsDirectories: [URL] {
        var directories: [URL] = []
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        if let executable = Bundle.main.executableURL {
            directories.append(executable.deletingLastPathComponent())
            directories.append(executable.resolvingSymlinksInPath().deletingLastPathComponent())
        }
        if let argv0 = CommandLine.arguments.first, argv0.contains("/") {
            let url = URL(fileURLWithPath: argv0)
            directories.append(url.deletingLastPathComponent())
            if url.pathExtension == "xctest" || url.path.contains(".xctest/") {
                var bundle = url
                while bundle.pathExtension != "xctest", bundle.path != "/" {
                    bundle.deleteLastPathComponent()
                }
                directories.append(bundle.deletingLastPathComponent())
            }
        }
        var seen = Set<String>()
        return directories.filter { seen.insert($0.standardizedFileURL.path).inserted }
    }

    /// The package root (the directory holding Package.swift), from this file's location.
    /// SwiftPM compiles with absolute paths; a relative #filePath is taken from the
    /// current directory.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)  // …/Sources/AHTestSupport/BuiltProducts.swift
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .standardizedFileURL
    }

    /// A script under `Tests/Interop/` (e.g. `aioquic_peer.py`).
    public static func interopScript(_ name: String) -> URL {
        packageRoot.appendingPathComponent("Tests/Interop").appendingPathComponent(name)
    }
}

/// Tools found on PATH.
public enum Executables {
    /// The first executable called `name` on PATH (or in the extra directories).
    public static func find(_ name: String, alsoIn extra: [String] = []) -> URL? {
        if name.contains("/") {
            return FileManager.default.isExecutableFile(atPath: name) ? URL(fileURLWithPath: name) : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + extra where !directory.isEmpty {
            let candidate = URL(fileURLWithPath: directory).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) {
                return candidate
            }
        }
        return nil
    }

    /// `python3`: `$AH_PYTHON` if set, else the first `python3` on PATH (the interpreter
    /// that `python3 -m pip install aioquic` installs into), else /usr/bin/python3.
    public static func python3() throws -> URL {
        if let override = ProcessInfo.processInfo.environment["AH_PYTHON"], !override.isEmpty {
            guard let url = find(override) else { throw ProcessError.executableNotFound("AH_PYTHON=\(override)") }
            return url
        }
        guard let url = find("python3", alsoIn: ["/usr/bin", "/usr/local/bin"]) else {
            throw ProcessError.executableNotFound("python3 (not on PATH; set AH_PYTHON)")
        }
        return url
    }

    /// ngtcp2's GnuTLS examples (Debian ngtcp2-client / ngtcp2-server).
    public static func gtlsclient() -> URL? { find("gtlsclient", alsoIn: ["/usr/bin"]) }
    public static func gtlsserver() -> URL? { find("gtlsserver", alsoIn: ["/usr/sbin", "/usr/bin"]) }
}

public enum Python {
    /// Whether `python3 -c 'import MODULE'` succeeds; nil (with the reason) when it does not.
    public static func importProblem(_ module: String, timeout: Double = 60) async -> String? {
        let python: URL
        do {
            python = try Executables.python3()
        } catch {
            return "\(error)"
        }
        do {
            let result = try await ProcessRunner.run(python, ["-c", "import \(module)"], timeout: timeout)
            if result.exit.succeeded { return nil }
            let reason = result.stderrString.split(separator: "\n").last.map(String.init) ?? "\(result.exit)"
            return "\(python.path) cannot import \(module): \(reason)"
        } catch {
            return "\(python.path) -c 'import \(module)' failed: \(error)"
        }
    }
}

/// True when the environment variable CI is set to anything but "", "0" or "false".
public var isRunningUnderCI: Bool {
    guard let value = ProcessInfo.processInfo.environment["CI"]?.lowercased() else { return false }
    return !["", "0", "false", "no"].contains(value)
}

/// A fresh directory under the system temp directory, removed (with its contents) when
/// this object is released.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    public init(prefix: String = "ah-test") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory(), isDirectory: true)
        let url = base.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        self.url = url
    }

    public var path: String { url.path }

    public func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}
