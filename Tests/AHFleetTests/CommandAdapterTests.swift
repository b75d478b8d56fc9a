import AHFleet
import AHTestSupport
import Foundation
import XCTest

/// The per-OS adapters. For bash and zsh the generated argv (and the SSH command line) is
/// really run and a printer reports the bytes it received; for PowerShell (not installed
/// here) the encoded script is decoded and read back with PowerShell's quoting rules.
final class CommandAdapterTests: XCTestCase {
    /// Words that break naive quoting.
    static let trickyWords = [
        "plain", "", "two words", "it's", "'", "''", "\"double\"", "$HOME", "${x:-y}", "`id`", "$(id)", "a\nb", "\n",
        "*", "?", "[a]", "~", "~/x", "ünïcødé ✓ 日本", "'\u{301}", "\\", "\\'", "a;b", "a|b", "&", "!", "!!", "#", "-n",
        "--", "%s", "\t", " lead", "trail ", "=", "a=b", "‘’‚‛", "\r\n",
    ]

    // MARK: Quoting

    func testPOSIXQuoting() {
        let cases: [(String, String)] = [
            ("", "''"), ("a", "'a'"), ("it's", #"'it'\''s'"#), ("'", #"''\'''"#), ("$x `y`", "'$x `y`'"),
            ("a\nb", "'a\nb'"), ("'\u{301}", "''\\''\u{301}'"), ("ü", "'ü'"),
        ]
        for (word, quoted) in cases { XCTAssertEqual(ShellQuoting.posix(word), quoted, word) }
    }

    func testPowerShellQuoting() {
        let cases: [(String, String)] = [
            ("", "''"), ("a", "'a'"), ("it's", "'it''s'"), ("$env:X `n \"q\"", "'$env:X `n \"q\"'"),
            ("‘x’", "'‘‘x’’'"), ("‚‛", "'‚‚‛‛'"), ("'\u{301}", "'''\u{301}'"), ("a\nb", "'a\nb'"),
        ]
        for (word, quoted) in cases { XCTAssertEqual(ShellQuoting.powerShell(word), quoted, word) }
        for word in Self.trickyWords {
            XCTAssertEqual(try PowerShellReader(ShellQuoting.powerShell(word)).words(), [word], word)
        }
    }

    // MARK: Script text

    func testPOSIXScripts() throws {
        let cases: [(String?, FleetCommand, [String: String], String)] = [
            ("/workspaces/proj", .argv(["pytest", "-q"]), [:], "cd -- '/workspaces/proj' && exec 'pytest' '-q'"),
            (nil, .argv(["make"]), [:], "exec 'make'"),
            ("/w", .argv(["a b"]), ["B": "2", "AH_FOLLOWER": "lin-1"],
             "cd -- '/w' && export AH_FOLLOWER='lin-1' B='2' && exec 'a b'"),
            ("/w", .shell("pytest tests/unit/ || exit 3"), [:], "cd -- '/w' && eval 'pytest tests/unit/ || exit 3'"),
            ("~", .argv(["ls"]), [:], "cd -- ~ && exec 'ls'"),
            ("~/ah proj", .argv(["ls"]), [:], "cd -- ~/'ah proj' && exec 'ls'"),
            ("~bob/p", .argv(["ls"]), [:], "cd -- '~bob/p' && exec 'ls'"),
        ]
        for (workspace, command, environment, script) in cases {
            for (os, shell) in [(FleetOS.linux, "bash"), (.macos, "zsh")] {
                let plan = try CommandAdapter.plan(os: os, workspace: workspace, command: command, environment: environment)
                XCTAssertEqual(plan.script, script)
                XCTAssertEqual(plan.argv, [shell, "-lc", script])
                XCTAssertEqual(plan.sshCommandLine, "\(shell) -lc " + ShellQuoting.posix(script))
            }
        }
    }

    func testPowerShellScriptText() throws {
        let plan = try CommandAdapter.plan(os: .windows, workspace: "/c/proj", command: .argv(["npm", "test", "it's"]),
                                           environment: ["AH_FOLLOWER": "win-1", "MSG": "$x ’"])
        let script = """
            $ProgressPreference = 'SilentlyContinue'
            try { [Console]::OutputEncoding = [System.Text.UTF8Encoding]::new($false) } catch {}
            $OutputEncoding = [System.Text.UTF8Encoding]::new($false)
            Set-Location -LiteralPath 'C:\\proj' -ErrorAction Stop
            $env:AH_FOLLOWER = 'win-1'
            $env:MSG = '$x ’’'
            $global:LASTEXITCODE = 0
            & 'npm' 'test' 'it''s'
            if ($?) { exit 0 }
            if ($global:LASTEXITCODE) { exit $global:LASTEXITCODE }
            exit 1
            """
        XCTAssertEqual(plan.script, script)
        XCTAssertEqual(Array(plan.argv.prefix(4)), ["powershell", "-NoProfile", "-NonInteractive", "-EncodedCommand"])
        XCTAssertEqual(plan.argv.count, 5)
        XCTAssertEqual(try Self.decode(plan.argv[4]), script)
        XCTAssertEqual(plan.sshCommandLine, "powershell -NoProfile -NonInteractive -EncodedCommand " + plan.argv[4])
        XCTAssertTrue(plan.argv[4].unicodeScalars.allSatisfy {
            ($0 >= "A" && $0 <= "Z") || ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || "+/=".unicodeScalars.contains($0)
        })
    }

    func testPowerShellShellTextAndHomeWorkspace() throws {
        let text = "npm test; if ($LASTEXITCODE) { Write-Host \"failed\" }"
        let plan = try CommandAdapter.plan(os: .windows, workspace: "~/src/proj", command: .shell(text), environment: [:])
        let lines = try Self.decode(plan.argv[4]).components(separatedBy: "\n")
        XCTAssertEqual(lines[3], "Set-Location -LiteralPath (Join-Path $HOME 'src\\proj') -ErrorAction Stop")
        XCTAssertEqual(lines[5], text, "shell text is passed as PowerShell text, not quoted")
        let home = try CommandAdapter.plan(os: .windows, workspace: "~", command: .shell("dir"), environment: [:])
        XCTAssertTrue(try Self.decode(home.argv[4]).contains("\nSet-Location -LiteralPath $HOME -ErrorAction Stop\n"))
        let none = try CommandAdapter.plan(os: .windows, workspace: nil, command: .shell("dir"), environment: [:])
        XCTAssertFalse(try Self.decode(none.argv[4]).contains("Set-Location"))
    }

    /// Every tricky word and value survives PowerShell's reading of the decoded script.
    func testPowerShellArgumentsReadBackUnchanged() throws {
        let environment = Dictionary(uniqueKeysWithValues: Self.trickyWords.enumerated().map { ("V\($0.offset)", $0.element) })
        let plan = try CommandAdapter.plan(os: .windows, workspace: "S:\\proj 'x'", command: .argv(["tool"] + Self.trickyWords),
                                           environment: environment)
        let lines = try Self.decode(plan.argv[4]).components(separatedBy: "\n")
        let script = try Self.decode(plan.argv[4])
        // Words with newlines span lines: read the script as a whole, statement by statement.
        var reader = PowerShellReader(script)
        try reader.skip(lines[0] + "\n" + lines[1] + "\n" + lines[2] + "\n")
        try reader.skip("Set-Location -LiteralPath ")
        XCTAssertEqual(try reader.quoted(), "S:\\proj 'x'")
        try reader.skip(" -ErrorAction Stop\n")
        for name in environment.keys.sorted() {
            try reader.skip("$env:\(name) = ")
            XCTAssertEqual(try reader.quoted(), environment[name], name)
            try reader.skip("\n")
        }
        try reader.skip("$global:LASTEXITCODE = 0\n& ")
        var words: [String] = []
        while true {
            words.append(try reader.quoted())
            if reader.peek(" ") { try reader.skip(" ") } else { break }
        }
        XCTAssertEqual(words, ["tool"] + Self.trickyWords)
        try reader.skip("\nif ($?) { exit 0 }\n")
    }

    // MARK: Really running bash and zsh

    func testBashAndZshReceiveEveryWordUnchanged() throws {
        let directory = try TemporaryDirectory()
        let fixture = try Fixture(directory)
        let workspace = directory.url.appendingPathComponent("ws 'q' $x `y` ü *")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        let value = "it's $HOME `id` \n ü ''"
        for os in try Self.posixShells() {
            let environment = CommandAdapter.environment(follower: "node-1", shardIndex: 2, shardCount: 7,
                                                         extra: ["X_VALUE": value, "EMPTY": ""])
            let plan = try CommandAdapter.plan(os: os, workspace: workspace.path,
                                               command: .argv([fixture.printer] + Self.trickyWords), environment: environment)
            let expected = [workspace.resolvingSymlinksInPath().path, "node-1", "2", "7", value, "set:"] + Self.trickyWords
            let viaArgv = try fixture.run(plan.argv)
            XCTAssertEqual(viaArgv.status, 0, "\(os): \(viaArgv.stderr)")
            XCTAssertEqual(viaArgv.words, expected, "\(os) argv")
            // The same through a POSIX login shell's `-c`, as sshd runs an exec request.
            let viaSSH = try fixture.run(["sh", "-c", plan.sshCommandLine])
            XCTAssertEqual(viaSSH.status, 0, "\(os): \(viaSSH.stderr)")
            XCTAssertEqual(viaSSH.words, expected, "\(os) ssh command line")
        }
    }

    func testShellTextIsInterpretedByTheFollowersShell() throws {
        let directory = try TemporaryDirectory()
        let fixture = try Fixture(directory)
        let workspace = directory.url.appendingPathComponent("proj")
        try FileManager.default.createDirectory(at: workspace, withIntermediateDirectories: true)
        for name in ["a.txt", "b.txt", "c.log"] { try Data().write(to: workspace.appendingPathComponent(name)) }
        for os in try Self.posixShells() {
            let plan = try CommandAdapter.plan(
                os: os, workspace: workspace.path,
                command: .shell("printf '%s\\n' \"$AH_SHARD_INDEX/$AH_SHARD_COUNT\" *.txt; false || exit 3"),
                environment: CommandAdapter.environment(follower: "n", shardIndex: 1, shardCount: 3))
            let result = try fixture.run(plan.argv)
            XCTAssertEqual(result.status, 3, "\(os): \(result.stderr)")
            XCTAssertEqual(result.stdout, "1/3\na.txt\nb.txt\n", "\(os)")
        }
    }

    func testAFailedCdRunsNothing() throws {
        let directory = try TemporaryDirectory()
        let fixture = try Fixture(directory)
        let missing = directory.url.appendingPathComponent("missing").path
        for os in try Self.posixShells() {
            for command in [FleetCommand.shell("echo ran; true"), .argv(["echo", "ran"])] {
                let plan = try CommandAdapter.plan(os: os, workspace: missing, command: command, environment: [:])
                let result = try fixture.run(plan.argv)
                XCTAssertNotEqual(result.status, 0, "\(os) \(command)")
                XCTAssertFalse(result.stdout.contains("ran"), "\(os) \(command): \(result.stdout)")
                XCTAssertTrue(result.stderr.contains("missing"), "\(os) \(command): \(result.stderr)")
            }
        }
    }

    func testTildeWorkspaceIsTheFollowersHome() throws {
        let directory = try TemporaryDirectory()
        let fixture = try Fixture(directory)
        try FileManager.default.createDirectory(at: fixture.home.appendingPathComponent("sub dir"), withIntermediateDirectories: true)
        for os in try Self.posixShells() {
            let plan = try CommandAdapter.plan(os: os, workspace: "~/sub dir", command: .argv([fixture.printer]), environment: [:])
            let result = try fixture.run(plan.argv)
            XCTAssertEqual(result.words.first, fixture.home.appendingPathComponent("sub dir").resolvingSymlinksInPath().path, "\(os)")
        }
    }

    // MARK: Windows paths

    func testWindowsPathMapping() {
        let cases: [(String, WindowsPath.Mapped)] = [
            ("S:\\proj", .absolute("S:\\proj")), ("s:/proj/sub/", .absolute("S:\\proj\\sub")), ("S:", .absolute("S:\\")),
            ("C:\\", .absolute("C:\\")), ("/c/proj", .absolute("C:\\proj")), ("/c", .absolute("C:\\")),
            ("/D/a//b", .absolute("D:\\a\\b")), ("/cygdrive/c/proj", .absolute("C:\\proj")), ("/mnt/e/x", .absolute("E:\\x")),
            ("\\\\srv\\share\\p", .absolute("\\\\srv\\share\\p")), ("//srv/share/p", .absolute("\\\\srv\\share\\p")),
            ("~", .home(relative: "")), ("~/proj", .home(relative: "proj")), ("~\\a/b", .home(relative: "a\\b")),
            ("proj/sub", .relative("proj\\sub")), ("ünï cødé", .relative("ünï cødé")),
        ]
        for (workspace, mapped) in cases {
            XCTAssertEqual(try WindowsPath.map(workspace).get(), mapped, workspace)
        }
        XCTAssertEqual(WindowsPath.display(.home(relative: "proj")), "$HOME\\proj")
        let refused: [(String, String)] = [
            ("/home/x", "no Windows equivalent"), ("/", "no Windows equivalent"), ("C:proj", "drive-relative"),
            ("C:\\a\\..\\b", "'..'"), ("C:\\a|b", "'|'"), ("C:\\a:b", "':'"), ("C:\\a*", "'*'"), ("~bob\\x", "'~user'"),
            ("//srv", "server and a share"), ("", "empty"), ("a\u{1}b", "control character"),
        ]
        for (workspace, reason) in refused {
            guard case .failure(let error) = WindowsPath.map(workspace) else { return XCTFail("accepted \(workspace)") }
            XCTAssertTrue(error.description.contains("'\(workspace)'") && error.description.contains(reason), error.description)
        }
    }

    // MARK: Errors

    func testErrorsNameTheValue() {
        let cases: [(FleetOS, String?, FleetCommand, [String: String], CommandAdapterError, String)] = [
            (.linux, nil, .argv([]), [:], .emptyCommand, "no command"),
            (.linux, nil, .argv([""]), [:], .emptyCommand, "no command"),
            (.linux, nil, .shell(" \n"), [:], .emptyCommand, "no command"),
            (.linux, nil, .argv(["a", "b\0c"]), [:], .nul(what: "argument 1 ('b\\0c')"), "argument 1 ('b\\0c') contains a NUL"),
            (.windows, nil, .shell("a\0"), [:], .nul(what: "the command text"), "NUL"),
            (.macos, nil, .argv(["a"]), ["1X": "v"], .invalidEnvironmentName("1X"), "'1X'"),
            (.linux, nil, .argv(["a"]), ["A-B": "v"], .invalidEnvironmentName("A-B"), "'A-B'"),
            (.windows, nil, .argv(["a"]), ["A": "\0"], .nul(what: "the value of A"), "the value of A"),
            (.linux, "", .argv(["a"]), [:], .emptyWorkspace, "workspace is empty"),
            (.windows, "/home/x", .argv(["a"]), [:],
             .workspace(WindowsPathError(workspace: "/home/x", reason: "an absolute POSIX path has no Windows equivalent (use C:\\path, /c/path or ~/path)")),
             "workspace '/home/x' cannot be a Windows path"),
        ]
        for (os, workspace, command, environment, expected, message) in cases {
            XCTAssertThrowsError(try CommandAdapter.plan(os: os, workspace: workspace, command: command, environment: environment)) {
                XCTAssertEqual($0 as? CommandAdapterError, expected)
                XCTAssertTrue(String(describing: $0).contains(message), String(describing: $0))
            }
        }
        let unknown = FleetMember(name: "mystery", sshUser: "u")
        XCTAssertThrowsError(try CommandAdapter.plan(for: unknown, command: .argv(["a"]), environment: [:])) {
            XCTAssertEqual($0 as? CommandAdapterError, .unknownOS(member: "mystery"))
            XCTAssertTrue(String(describing: $0).contains("'mystery'"))
        }
        let huge = String(repeating: "x", count: 20_000)
        XCTAssertThrowsError(try CommandAdapter.plan(os: .windows, workspace: nil, command: .argv([huge]), environment: [:])) {
            guard case .tooLong(let length, 32_000)? = $0 as? CommandAdapterError else { return XCTFail("\($0)") }
            XCTAssertTrue(String(describing: $0).contains(String(length)))
        }
    }

    func testPlanForMemberUsesItsOSAndWorkspace() throws {
        let member = FleetMember(name: "mac", sshUser: "u", os: .macos, workspace: "/Volumes/ah-overlays/proj")
        let plan = try CommandAdapter.plan(for: member, command: .argv(["pytest", "-q"]),
                                           environment: CommandAdapter.environment(follower: member.name))
        XCTAssertEqual(plan.argv, ["zsh", "-lc", "cd -- '/Volumes/ah-overlays/proj' && export AH_FOLLOWER='mac' && exec 'pytest' '-q'"])
    }

    func testParseEnvironment() throws {
        XCTAssertEqual(try CommandAdapter.parseEnvironment(["A=1", "B=", "C=x=y", "A=2", "_u9=ü 'q'"]),
                       ["A": "2", "B": "", "C": "x=y", "_u9": "ü 'q'"])
        let cases: [(String, CommandAdapterError, String)] = [
            ("NOEQUALS", .invalidAssignment("NOEQUALS"), "invalid --env 'NOEQUALS'"),
            ("=v", .invalidEnvironmentName(""), "invalid environment variable name ''"),
            ("9A=v", .invalidEnvironmentName("9A"), "'9A'"),
            ("A B=v", .invalidEnvironmentName("A B"), "'A B'"),
            ("AH_FOLLOWER=x", .reservedEnvironmentName("AH_FOLLOWER"), "'AH_FOLLOWER' is set by ah"),
            ("AH_SHARD_INDEX=1", .reservedEnvironmentName("AH_SHARD_INDEX"), "'AH_SHARD_INDEX'"),
            ("A=\0", .nul(what: "the value of A"), "NUL"),
        ]
        for (text, expected, message) in cases {
            XCTAssertThrowsError(try CommandAdapter.parseEnvironment([text])) {
                XCTAssertEqual($0 as? CommandAdapterError, expected)
                XCTAssertTrue(String(describing: $0).contains(message), String(describing: $0))
            }
        }
        XCTAssertEqual(CommandAdapter.environment(follower: "f", shardIndex: 0, shardCount: 3, extra: ["K": "v"]),
                       ["K": "v", "AH_FOLLOWER": "f", "AH_SHARD_INDEX": "0", "AH_SHARD_COUNT": "3"])
    }

    // MARK: Helpers

    static func decode(_ base64: String) throws -> String {
        let data = try XCTUnwrap(Data(base64Encoded: base64))
        XCTAssertEqual(data.count % 2, 0)
        let units = stride(from: 0, to: data.count, by: 2).map { UInt16(data[$0]) | UInt16(data[$0 + 1]) << 8 }
        return String(decoding: units, as: UTF16.self)
    }

    /// Linux always (bash is a build dependency); macOS's zsh must be installed too (the CI
    /// installs it), and is only skipped outside CI.
    static func posixShells() throws -> [FleetOS] {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/zsh") || FileManager.default.isExecutableFile(atPath: "/bin/zsh") {
            return [.linux, .macos]
        }
        if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("zsh is not installed (apt-get install zsh)") }
        return [.linux]
    }

    /// A fake follower: its own HOME and a printer program that reports, NUL-separated, its
    /// working directory, the ah variables and every argument.
    struct Fixture {
        let home: URL
        let printer: String

        init(_ directory: TemporaryDirectory) throws {
            home = directory.url.appendingPathComponent("home")
            try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
            // A path that itself needs quoting.
            let bin = directory.url.appendingPathComponent("bin 'x' $y")
            try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
            let printer = bin.appendingPathComponent("printer")
            try Data("""
                #!/bin/sh
                printf '%s\\0' "$(pwd -P)" "${AH_FOLLOWER-unset}" "${AH_SHARD_INDEX-unset}" "${AH_SHARD_COUNT-unset}" \
                  "${X_VALUE-unset}" "${EMPTY+set}:${EMPTY-}"
                printf '%s\\0' "$@"

                """.utf8).write(to: printer)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: printer.path)
            self.printer = printer.path
        }

        struct Result {
            var status: Int32
            var stdout: String
            var stderr: String
            var words: [String] {
                var parts = stdout.components(separatedBy: "\0")
                if parts.last == "" { parts.removeLast() }
                return parts
            }
        }

        /// Runs `argv` (argv[0] looked up in /usr/bin:/bin) with a clean environment.
        func run(_ argv: [String]) throws -> Result {
            let process = Process()
            let program = ["/usr/bin/", "/bin/"].map { $0 + argv[0] }.first { FileManager.default.isExecutableFile(atPath: $0) }
            process.executableURL = URL(fileURLWithPath: try XCTUnwrap(program, "\(argv[0]) not found"))
            process.arguments = Array(argv.dropFirst())
            process.environment = ["HOME": home.path, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"]
            process.currentDirectoryURL = home
            let stdout = Pipe()
            let stderr = Pipe()
            process.standardOutput = stdout
            process.standardError = stderr
            process.standardInput = FileHandle.nullDevice
            try process.run()
            // Read both to the end before waiting, so a full pipe cannot stall the child.
            let errorData = ReadAll(stderr.fileHandleForReading)
            let outputData = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return Result(status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self),
                          stderr: String(decoding: errorData.wait(), as: UTF8.self))
        }
    }
}

/// Reads a file handle to its end on a background thread.
final class ReadAll: @unchecked Sendable {
    // Written once by the reading thread before the semaphore is signalled, read after the wait.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}

/// Reads PowerShell verbatim strings the way PowerShell's tokenizer does: a string opens
/// with any single-quote character (' ‘ ’ ‚ ‛); inside, a quote character followed by
/// another one stands for the second, a lone one closes the string.
struct PowerShellReader {
    struct Mismatch: Error, CustomStringConvertible { var description: String }

    private var scalars: [Unicode.Scalar]
    private var index = 0

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    func peek(_ text: String) -> Bool {
        let expected = Array(text.unicodeScalars)
        return scalars.count - index >= expected.count && Array(scalars[index..<index + expected.count]) == expected
    }

    mutating func skip(_ text: String) throws {
        guard peek(text) else {
            throw Mismatch(description: "expected \(text.debugDescription) at \(String(String.UnicodeScalarView(scalars[index...].prefix(40))).debugDescription)")
        }
        index += text.unicodeScalars.count
    }

    mutating func quoted() throws -> String {
        guard index < scalars.count, ShellQuoting.powerShellSingleQuotes.contains(scalars[index]) else {
            throw Mismatch(description: "no quoted string at \(index)")
        }
        index += 1
        var value = String.UnicodeScalarView()
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if ShellQuoting.powerShellSingleQuotes.contains(scalar) {
                guard index < scalars.count, ShellQuoting.powerShellSingleQuotes.contains(scalars[index]) else {
                    return String(value)
                }
                value.append(scalars[index])
                index += 1
            } else {
                value.append(scalar)
            }
        }
        throw Mismatch(description: "unterminated string")
    }

    /// The whole text as a sequence of quoted words separated by single spaces.
    func words() throws -> [String] {
        var reader = self
        var words: [String] = []
        while reader.index < reader.scalars.count {
            words.append(try reader.quoted())
            if reader.index < reader.scalars.count { try reader.skip(" ") }
        }
        return words
    }
}
