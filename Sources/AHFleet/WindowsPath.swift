/// How a member's `workspace` is spelled for a Windows follower. Fleet configs are often
/// written on POSIX machines, so the common POSIX spellings of Windows paths are mapped:
///
/// | workspace                       | Windows path           |
/// |---------------------------------|------------------------|
/// | `S:\proj`, `s:/proj`, `S:`      | `S:\proj`, `S:\proj`, `S:\` (drive upper-cased) |
/// | `/c/proj` (MSYS, Git Bash)      | `C:\proj`              |
/// | `/cygdrive/c/proj`, `/mnt/c/proj` | `C:\proj`            |
/// | `\\srv\share\p`, `//srv/share/p` | `\\srv\share\p` (UNC) |
/// | `~`, `~/proj`, `~\proj`         | `$HOME`, `$HOME\proj`  |
/// | `proj\sub`, `proj/sub`          | `proj\sub`, relative to the SSH login directory |
///
/// `/` becomes `\`, repeated separators collapse, a trailing separator is dropped (except
/// after a drive). Refused: other absolute POSIX paths (`/home/x` has no Windows
/// equivalent), drive-relative paths (`C:proj`), `..` segments, and the characters Windows
/// forbids in paths (`< > " | ? *`, control characters, `:` after the drive).
public enum WindowsPath {
    public enum Mapped: Sendable, Hashable {
        /// A drive or UNC path: `C:\proj`, `\\srv\share\p`.
        case absolute(String)
        /// Under the user's home (`$HOME` in PowerShell); "" is the home itself.
        case home(relative: String)
        /// Relative to the SSH login directory.
        case relative(String)
    }

    /// Maps `workspace`, or says why it cannot be a Windows path.
    public static func map(_ workspace: String) -> Result<Mapped, WindowsPathError> {
        func fail(_ reason: String) -> Result<Mapped, WindowsPathError> {
            .failure(WindowsPathError(workspace: workspace, reason: reason))
        }
        guard !workspace.isEmpty else { return fail("it is empty") }
        let scalars = Array(workspace.unicodeScalars)
        func isSeparator(_ scalar: Unicode.Scalar) -> Bool { scalar == "/" || scalar == "\\" }

        if scalars[0] == "~" {
            guard scalars.count == 1 || isSeparator(scalars[1]) else {
                return fail("'~user' is not supported on Windows (use ~ or an absolute path)")
            }
            return segments(String(String.UnicodeScalarView(scalars.dropFirst()))).map { .home(relative: $0.joined(separator: "\\")) }
                .mapError { WindowsPathError(workspace: workspace, reason: $0.text) }
        }
        if scalars.count >= 2, ASCII.isLetter(scalars[0]), scalars[1] == ":" {
            guard scalars.count == 2 || isSeparator(scalars[2]) else {
                return fail("a drive-relative path like 'C:proj' depends on the drive's current directory (write C:\\proj)")
            }
            return drive(Character(scalars[0]), rest: String(String.UnicodeScalarView(scalars.dropFirst(2))), workspace: workspace)
        }
        if scalars.count >= 2, isSeparator(scalars[0]), isSeparator(scalars[1]) {
            let parts: [String]
            switch segments(String(String.UnicodeScalarView(scalars.dropFirst(2)))) {
            case .success(let value): parts = value
            case .failure(let reason): return fail(reason.text)
            }
            guard parts.count >= 2 else { return fail("a UNC path needs a server and a share (\\\\server\\share)") }
            return .success(.absolute("\\\\" + parts.joined(separator: "\\")))
        }
        if isSeparator(scalars[0]) {
            let parts = workspace.split(whereSeparator: { $0 == "/" || $0 == "\\" }).map(String.init)
            // /c/..., /cygdrive/c/..., /mnt/c/...: the drive is the first one-letter segment.
            var driveIndex = 0
            if let first = parts.first, first == "cygdrive" || first == "mnt" { driveIndex = 1 }
            if parts.count > driveIndex, parts[driveIndex].unicodeScalars.count == 1,
               let letter = parts[driveIndex].unicodeScalars.first, ASCII.isLetter(letter) {
                return drive(Character(letter), rest: "\\" + parts.dropFirst(driveIndex + 1).joined(separator: "\\"),
                             workspace: workspace)
            }
            return fail("an absolute POSIX path has no Windows equivalent (use C:\\path, /c/path or ~/path)")
        }
        return segments(workspace).map { .relative($0.joined(separator: "\\")) }
            .mapError { WindowsPathError(workspace: workspace, reason: $0.text) }
    }

    /// The mapped path as text: `C:\proj`, `$HOME\proj`, `proj`.
    public static func display(_ mapped: Mapped) -> String {
        switch mapped {
        case .absolute(let path), .relative(let path): path
        case .home(let relative): relative.isEmpty ? "$HOME" : "$HOME\\" + relative
        }
    }

    private static func drive(_ letter: Character, rest: String, workspace: String) -> Result<Mapped, WindowsPathError> {
        segments(rest).map { .absolute(letter.uppercased() + ":\\" + $0.joined(separator: "\\")) }
            .mapError { WindowsPathError(workspace: workspace, reason: $0.text) }
    }

    /// Non-empty segments of `path`, or why one of them cannot be part of a Windows path.
    private struct Reason: Error { var text: String }

    private static func segments(_ path: String) -> Result<[String], Reason> {
        let parts = path.split(whereSeparator: { $0 == "/" || $0 == "\\" }).map(String.init)
        for part in parts {
            if part == ".." { return .failure(Reason(text: "'..' segments are not allowed")) }
            if let bad = part.unicodeScalars.first(where: { "<>\"|?*:".unicodeScalars.contains($0) || ASCII.isControl($0) }) {
                let shown = ASCII.isControl(bad) ? "a control character" : "'\(bad)'"
                return .failure(Reason(text: "\(shown) is not allowed in a Windows path"))
            }
        }
        return .success(parts)
    }
}

/// A workspace that cannot be a Windows path.
public struct WindowsPathError: Error, Sendable, Hashable, CustomStringConvertible {
    public var workspace: String
    public var reason: String

    public init(workspace: String, reason: String) {
        self.workspace = workspace
        self.reason = reason
    }

    public var description: String { "workspace '\(workspace)' cannot be a Windows path: \(reason)" }
}
