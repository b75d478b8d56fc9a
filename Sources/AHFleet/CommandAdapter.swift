import Foundation

/// What to run on a follower: the words after `--` (each quoted for the follower's shell,
/// so it arrives as the same argv), or one `--command` string (given to the follower's
/// shell as shell text, so its pipes, globs and variables work there).
public enum FleetCommand: Sendable, Hashable {
    case argv([String])
    case shell(String)
}

/// How to start one command on one follower.
public struct LaunchPlan: Sendable, Hashable {
    /// What a helper on the follower spawns directly, e.g. `["bash", "-lc", script]`.
    public var argv: [String]
    /// The same as one command line for an SSH exec request (read by the follower's login
    /// shell: a POSIX shell on Linux/macOS, cmd.exe or PowerShell on Windows).
    public var sshCommandLine: String
    /// The script the shell runs (for logs and tests; for Windows, the text before encoding).
    public var script: String

    public init(argv: [String], sshCommandLine: String, script: String) {
        self.argv = argv
        self.sshCommandLine = sshCommandLine
        self.script = script
    }
}

/// The per-OS command adapters: pure functions from (OS, workspace, command, environment)
/// to a `LaunchPlan`.
///
/// Linux (`bash -lc`) and macOS (`zsh -lc`) run
///
///     cd -- 'WS' && export K='V' ... && exec 'arg0' 'arg1' ...      (argv)
///     cd -- 'WS' && export K='V' ... && eval 'TEXT'                  (--command TEXT)
///
/// Every word is POSIX single-quoted (`ShellQuoting.posix`); a workspace `~` or `~/rest` is
/// written `~/'rest'` so the follower's shell expands the home directory. `exec` lets the
/// helper see the program's own exit status and signal; `eval` keeps the text's own `;`,
/// `||` and `&` from binding to the `cd` prefix. A failed `cd` stops before the command.
///
/// Windows runs `powershell -NoProfile -NonInteractive -EncodedCommand BASE64`, BASE64 being
/// the script in UTF-16LE (no quoting survives cmd.exe and PowerShell's own argument
/// parsing better than none at all):
///
///     $ProgressPreference = 'SilentlyContinue'
///     try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) } catch {}
///     $OutputEncoding = [System.Text.UTF8Encoding]::new($false)
///     Set-Location -LiteralPath 'C:\proj' -ErrorAction Stop
///     $env:K = 'V'
///     $global:LASTEXITCODE = 0
///     & 'arg0' 'arg1'                 (argv; or the --command TEXT as its own lines)
///     if ($?) { exit 0 }
///     if ($global:LASTEXITCODE) { exit $global:LASTEXITCODE }
///     exit 1
///
/// Words are PowerShell verbatim strings (`ShellQuoting.powerShell`); the workspace is mapped
/// by `WindowsPath.map` (`~/x` becomes `(Join-Path $HOME 'x')`). Progress records are off
/// (they would reach the leader as CLIXML), output is UTF-8, and the exit code is the
/// program's (or 1 when a cmdlet failed). PowerShell then hands the words to a native
/// program by its own rules: Windows PowerShell 5.1 drops empty arguments and does not
/// escape embedded `"` (PowerShell 7.3+ does); use `--command` to spell such calls out.
/// Also on Windows, an empty environment value removes the variable.
///
/// Environment variables are set inside the command because Windows' sshd ignores
/// AcceptEnv and Unix sshds rarely accept arbitrary names. Names must be identifiers
/// (`[A-Za-z_][A-Za-z0-9_]*`) and no word may contain NUL (no shell can pass it).
public enum CommandAdapter {
    /// The variables `ah` sets itself (not allowed in `--env`).
    public static let reservedEnvironmentNames: Set<String> = ["AH_FOLLOWER", "AH_SHARD_INDEX", "AH_SHARD_COUNT"]

    /// The longest Windows command line (CreateProcess's limit is 32767 UTF-16 units,
    /// with room left for sshd's own wrapping).
    public static let maximumWindowsCommandLine = 32_000

    /// The plan for `member`; its OS must be known (the leader fills it in from the executor).
    public static func plan(for member: FleetMember, command: FleetCommand,
                            environment: [String: String]) throws(CommandAdapterError) -> LaunchPlan {
        guard let os = member.os else { throw CommandAdapterError.unknownOS(member: member.name) }
        return try plan(os: os, workspace: member.workspace, command: command, environment: environment)
    }

    public static func plan(os: FleetOS, workspace: String?, command: FleetCommand,
                            environment: [String: String]) throws(CommandAdapterError) -> LaunchPlan {
        try validate(command: command, environment: environment, workspace: workspace)
        switch os {
        case .linux, .macos:
            let shell = os == .linux ? "bash" : "zsh"
            let script = posixScript(workspace: workspace, command: command, environment: environment)
            let argv = [shell, "-lc", script]
            return LaunchPlan(argv: argv, sshCommandLine: argv.map(commandLineWord).joined(separator: " "), script: script)
        case .windows:
            var mapped: WindowsPath.Mapped?
            if let workspace {
                switch WindowsPath.map(workspace) {
                case .success(let value): mapped = value
                case .failure(let error): throw CommandAdapterError.workspace(error)
                }
            }
            let script = powerShellScript(workspace: mapped, command: command, environment: environment)
            let encoded = encodedCommand(script)
            let argv = ["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand", encoded]
            let line = argv.joined(separator: " ")
            guard line.utf16.count <= maximumWindowsCommandLine else {
                throw CommandAdapterError.tooLong(length: line.utf16.count, limit: maximumWindowsCommandLine)
            }
            return LaunchPlan(argv: argv, sshCommandLine: line, script: script)
        }
    }

    /// The POSIX script (bash and zsh alike); inputs already validated.
    public static func posixScript(workspace: String?, command: FleetCommand, environment: [String: String]) -> String {
        var steps: [String] = []
        if let workspace { steps.append("cd -- " + posixPath(workspace)) }
        if !environment.isEmpty {
            steps.append("export " + environment.keys.sorted().map { "\($0)=\(ShellQuoting.posix(environment[$0]!))" }
                .joined(separator: " "))
        }
        switch command {
        case .argv(let words): steps.append("exec " + words.map(ShellQuoting.posix).joined(separator: " "))
        case .shell(let text): steps.append("eval " + ShellQuoting.posix(text))
        }
        return steps.joined(separator: " && ")
    }

    /// The PowerShell script; inputs already validated.
    public static func powerShellScript(workspace: WindowsPath.Mapped?, command: FleetCommand,
                                        environment: [String: String]) -> String {
        var lines = [
            "$ProgressPreference = 'SilentlyContinue'",
            "try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) } catch {}",
            "$OutputEncoding = [System.Text.UTF8Encoding]::new($false)",
        ]
        if let workspace {
            let target: String
            switch workspace {
            case .absolute(let path), .relative(let path): target = ShellQuoting.powerShell(path)
            case .home(let relative): target = relative.isEmpty ? "$HOME" : "(Join-Path $HOME \(ShellQuoting.powerShell(relative)))"
            }
            lines.append("Set-Location -LiteralPath \(target) -ErrorAction Stop")
        }
        for name in environment.keys.sorted() {
            lines.append("$env:\(name) = \(ShellQuoting.powerShell(environment[name]!))")
        }
        lines.append("$global:LASTEXITCODE = 0")
        switch command {
        case .argv(let words): lines.append("& " + words.map(ShellQuoting.powerShell).joined(separator: " "))
        case .shell(let text): lines.append(text)
        }
        lines += [
            "if ($?) { exit 0 }",
            "if ($global:LASTEXITCODE) { exit $global:LASTEXITCODE }",
            "exit 1",
        ]
        return lines.joined(separator: "\n")
    }

    /// `-EncodedCommand`'s argument: base64 of the script's UTF-16LE bytes.
    public static func encodedCommand(_ script: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(script.utf16.count * 2)
        for unit in script.utf16 {
            bytes.append(UInt8(unit & 0xff))
            bytes.append(UInt8(unit >> 8))
        }
        return Data(bytes).base64EncodedString()
    }

    /// `AH_FOLLOWER` (and `AH_SHARD_INDEX`/`AH_SHARD_COUNT` for a shard) over `extra` (the
    /// parsed `--env`s).
    public static func environment(follower: String, shardIndex: Int? = nil, shardCount: Int? = nil,
                                   extra: [String: String] = [:]) -> [String: String] {
        var environment = extra
        environment["AH_FOLLOWER"] = follower
        if let shardIndex { environment["AH_SHARD_INDEX"] = String(shardIndex) }
        if let shardCount { environment["AH_SHARD_COUNT"] = String(shardCount) }
        return environment
    }

    /// Parses `--env K=V` values (split at the first `=`; V may be empty or contain `=`).
    /// A later K replaces an earlier one.
    public static func parseEnvironment(_ assignments: [String]) throws(CommandAdapterError) -> [String: String] {
        var environment: [String: String] = [:]
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "=") else { throw CommandAdapterError.invalidAssignment(assignment) }
            let name = String(assignment[..<equals])
            let value = String(assignment[assignment.index(after: equals)...])
            guard ASCII.isIdentifier(name) else { throw CommandAdapterError.invalidEnvironmentName(name) }
            guard !reservedEnvironmentNames.contains(name) else { throw CommandAdapterError.reservedEnvironmentName(name) }
            guard !value.unicodeScalars.contains("\0") else { throw CommandAdapterError.nul(what: "the value of \(name)") }
            environment[name] = value
        }
        return environment
    }

    // MARK: Private

    private static func validate(command: FleetCommand, environment: [String: String],
                                 workspace: String?) throws(CommandAdapterError) {
        switch command {
        case .argv(let words):
            guard let first = words.first, !first.isEmpty else { throw CommandAdapterError.emptyCommand }
            if let index = words.firstIndex(where: { $0.unicodeScalars.contains("\0") }) {
                throw CommandAdapterError.nul(what: "argument \(index) ('\(words[index].replacingOccurrences(of: "\0", with: "\\0"))')")
            }
        case .shell(let text):
            guard !text.allSatisfy(\.isWhitespace) else { throw CommandAdapterError.emptyCommand }
            if text.unicodeScalars.contains("\0") { throw CommandAdapterError.nul(what: "the command text") }
        }
        for name in environment.keys.sorted() {
            guard ASCII.isIdentifier(name) else { throw CommandAdapterError.invalidEnvironmentName(name) }
            if environment[name]!.unicodeScalars.contains("\0") { throw CommandAdapterError.nul(what: "the value of \(name)") }
        }
        if let workspace {
            guard !workspace.isEmpty else { throw CommandAdapterError.emptyWorkspace }
            if workspace.unicodeScalars.contains("\0") { throw CommandAdapterError.nul(what: "the workspace") }
        }
    }

    /// `~` and `~/rest` keep the tilde outside the quotes so the follower's shell expands it.
    private static func posixPath(_ path: String) -> String {
        if path == "~" { return "~" }
        if path.hasPrefix("~/") {
            let rest = String(path.dropFirst(2))
            return rest.isEmpty ? "~/" : "~/" + ShellQuoting.posix(rest)
        }
        return ShellQuoting.posix(path)
    }

    /// Words of the SSH command line: plain when they have only characters no POSIX shell
    /// treats specially (readability of `bash -lc '...'`), else single-quoted.
    private static func commandLineWord(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
            ASCII.isLetter($0) || ASCII.isDigit($0) || "-_./:,+@%".unicodeScalars.contains($0)
        }
        return plain ? word : ShellQuoting.posix(word)
    }
}

/// Why no launch plan can be made; `description` names the value.
public enum CommandAdapterError: Error, Sendable, Hashable, CustomStringConvertible {
    case emptyCommand
    case emptyWorkspace
    /// NUL in an argument, value or the command text (`what` says which).
    case nul(what: String)
    case invalidEnvironmentName(String)
    case reservedEnvironmentName(String)
    /// An `--env` without `=`.
    case invalidAssignment(String)
    /// The member's OS is not known yet.
    case unknownOS(member: String)
    case workspace(WindowsPathError)
    /// The Windows command line would be longer than Windows allows.
    case tooLong(length: Int, limit: Int)

    public var description: String {
        switch self {
        case .emptyCommand: "no command to run (give one after -- or with --command)"
        case .emptyWorkspace: "the workspace is empty"
        case .nul(let what): "\(what) contains a NUL character, which no shell can pass"
        case .invalidEnvironmentName(let name):
            "invalid environment variable name '\(name)': use letters, digits and '_', not starting with a digit"
        case .reservedEnvironmentName(let name): "environment variable '\(name)' is set by ah itself"
        case .invalidAssignment(let text): "invalid --env '\(text)': expected NAME=VALUE"
        case .unknownOS(let member): "the operating system of '\(member)' is not known (set os in the fleet config)"
        case .workspace(let error): error.description
        case .tooLong(let length, let limit):
            "the command is too long for Windows: \(length) characters once encoded (at most \(limit))"
        }
    }
}
