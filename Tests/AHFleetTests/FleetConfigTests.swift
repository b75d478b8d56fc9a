import AHFleet
import AHTestSupport
import Foundation
import XCTest

/// Reading `.agents/config.toml`: every key, its default, discovery, and the errors.
final class FleetConfigTests: XCTestCase {
    static let context = FleetLoadContext(homeDirectory: "/home/tester", userName: "tester")

    /// The example of cli.md's "Fleet config" section, verbatim.
    static let cliExample = """
        [fleet]
        name = "cross-platform"
        remote_server = "https://ap.example.org:8443"  # access point for CONNECT and events (http:// or https://)
        token_file = "~/.config/ah/token"               # user JWT for CONNECT and REST (or env AH_TOKEN_FILE)
        ca_file = "/etc/ah/http-ca.pem"                 # optional: CA of the access point's HTTPS certificate
        identity_file = "~/.ssh/id_ed25519"             # default SSH key (ssh-agent is used when SSH_AUTH_SOCK is set)
        agent_state_dir = "/var/lib/ah-agent"           # the leader's own `ah agent enroll --state-dir` (events over QUIC)
        remote_ah = "ah"                                # how followers' shells find `ah` (the follower helper); per member too

        [[fleet.members]]
        name = "macos-dev"            # = the executor's --name at the access point
        role = "follower"             # leader | follower
        host = "mac.internal"         # for direct dials
        ssh_user = "agent"
        ssh_port = 22                 # default 22
        connect = "auto"              # auto (direct when reachable, else access point) | direct | access-point
        os = "macos"                  # linux | macos | windows; default: tags.os, else what the executor reported
        workspace = "/Volumes/ah-overlays/proj"   # the follower's copy of the leader workspace
        remote_server = "https://ap2.example.org:8443"  # optional: a member behind another access point
        tags = { os = "macos", arch = "arm64" }

        [fleet.sync]
        ignores = ["node_modules", ".venv", "target", "build"]   # gitignore syntax; .git is always ignored
        timeout = "60s"

        [fleet.connectivity]
        ssh_connect_timeout = "5s"
        ssh_keepalive = "30s"
        health_probe_interval = "30s"
        failure_threshold = 3

        [fleet.execution]
        concurrency = 1               # commands at once per host
        timeout = "10m"
        ssh_retry = true

        [filesets.release]
        include = ["target/release/*"]
        exclude = ["*.d", "*.rlib"]
        required = true
        """

    /// The seed's fleet (a leader and three followers, OS only in tags).
    static let seedExample = """
        [fleet]
        name = "cross-platform"
        [[fleet.members]]
        name = "linux-leader"
        role = "leader"
        host = "linux.internal"
        ssh_user = "agent"
        [[fleet.members]]
        name = "macos-dev"
        role = "follower"
        host = "mac.internal"
        ssh_user = "agent"
        tags = { os = "macos", arch = "arm64" }
        [[fleet.members]]
        name = "windows-build"
        role = "follower"
        host = "win.internal"
        ssh_user = "agent"
        tags = { os = "windows", arch = "x64" }
        [[fleet.members]]
        name = "linux-arm"
        role = "follower"
        host = "arm.internal"
        ssh_user = "agent"
        tags = { os = "linux", arch = "arm64" }
        """

    func testCLIExampleReadsEveryKey() throws {
        let directory = try TemporaryDirectory()
        let path = try write(Self.cliExample, in: directory)
        let config = try FleetConfig.load(path: path, context: Self.context)
        XCTAssertEqual(config.file, path)
        XCTAssertEqual(config.settings, FleetSettings(
            name: "cross-platform", remoteServer: "https://ap.example.org:8443", tokenFile: "/home/tester/.config/ah/token",
            caFile: "/etc/ah/http-ca.pem", identityFile: "/home/tester/.ssh/id_ed25519", knownHosts: nil,
            agentStateDir: "/var/lib/ah-agent", remoteAH: "ah",
            sync: .init(ignores: ["node_modules", ".venv", "target", "build"], timeout: .seconds(60)),
            connectivity: .init(sshConnectTimeout: .seconds(5), sshKeepalive: .seconds(30), healthProbeInterval: .seconds(30),
                                failureThreshold: 3),
            execution: .init(concurrency: 1, timeout: .seconds(600), sshRetry: true)))
        XCTAssertEqual(config.members, [FleetMember(
            name: "macos-dev", role: .follower, host: "mac.internal", sshUser: "agent", sshPort: 22, connect: .auto, os: .macos,
            workspace: "/Volumes/ah-overlays/proj", remoteServer: "https://ap2.example.org:8443",
            tags: ["os": "macos", "arch": "arm64"], identityFile: "/home/tester/.ssh/id_ed25519", knownHosts: nil, remoteAH: "ah")])
        XCTAssertNil(config.leader)
        XCTAssertEqual(config.followers.map(\.name), ["macos-dev"])
        XCTAssertEqual(config.filesets, [Fileset(name: "release", include: ["target/release/*"], exclude: ["*.d", "*.rlib"],
                                                 required: true, dest: nil)])
        XCTAssertEqual(config.fileset(named: "release")?.required, true)
    }

    func testDefaultsForAnEmptyFileAndAMinimalMember() throws {
        XCTAssertEqual(try FleetConfig.parse("", file: "/r/c.toml", context: Self.context),
                       FleetConfig(file: "/r/c.toml", settings: FleetSettings(), members: [], filesets: []))
        let defaults = FleetSettings()
        XCTAssertEqual(defaults.name, "default")
        XCTAssertEqual(defaults.remoteAH, "ah")
        XCTAssertEqual(defaults.sync, .init(ignores: ["node_modules", ".venv", "target", "build"], timeout: .seconds(60)))
        XCTAssertEqual(defaults.connectivity, .init(sshConnectTimeout: .seconds(5), sshKeepalive: .seconds(30),
                                                    healthProbeInterval: .seconds(30), failureThreshold: 3))
        XCTAssertEqual(defaults.execution, .init(concurrency: 1, timeout: .seconds(600), sshRetry: true))
        XCTAssertNil(defaults.remoteServer ?? defaults.tokenFile ?? defaults.caFile ?? defaults.identityFile
                     ?? defaults.knownHosts ?? defaults.agentStateDir)

        let config = try FleetConfig.parse("[[fleet.members]]\nname = \"lin-1\"\n", file: "/r/c.toml", context: Self.context)
        XCTAssertEqual(config.members, [FleetMember(
            name: "lin-1", role: .follower, host: nil, sshUser: "tester", sshPort: 22, connect: .auto, os: nil, workspace: nil,
            remoteServer: nil, tags: [:], identityFile: nil, knownHosts: nil, remoteAH: "ah")])
    }

    func testSeedExample() throws {
        let config = try FleetConfig.parse(Self.seedExample, file: "/r/c.toml", context: Self.context)
        XCTAssertEqual(config.leader?.name, "linux-leader")
        XCTAssertEqual(config.followers.map(\.name), ["macos-dev", "windows-build", "linux-arm"])
        XCTAssertEqual(config.followers.map(\.os), [.macos, .windows, .linux])
        XCTAssertNil(config.leader?.os)
    }

    func testMemberValuesOverrideFleetDefaults() throws {
        let config = try FleetConfig.parse("""
            [fleet]
            remote_server = "http://ap.local:8080"
            identity_file = "/keys/fleet"
            known_hosts = "~/.ssh/known_hosts"
            remote_ah = "/opt/ah/bin/ah"
            [[fleet.members]]
            name = "a"
            [[fleet.members]]
            name = "b"
            remote_server = "https://other.example:8443"
            identity_file = "keys/b"
            known_hosts = "/etc/ssh/known"
            remote_ah = "C:\\\\ah\\\\ah.exe"
            ssh_port = 2222
            connect = "access-point"
            os = "windows"
            workspace = "/c/proj"
            """, file: "/repo/.agents/config.toml", context: Self.context)
        let a = try XCTUnwrap(config.member(named: "a"))
        XCTAssertEqual(a.remoteServer, "http://ap.local:8080")
        XCTAssertEqual(a.identityFile, "/keys/fleet")
        XCTAssertEqual(a.knownHosts, "/home/tester/.ssh/known_hosts")
        XCTAssertEqual(a.remoteAH, "/opt/ah/bin/ah")
        let b = try XCTUnwrap(config.member(named: "b"))
        XCTAssertEqual(b.remoteServer, "https://other.example:8443")
        // Relative local paths are taken from the config file's directory.
        XCTAssertEqual(b.identityFile, "/repo/.agents/keys/b")
        XCTAssertEqual(b.knownHosts, "/etc/ssh/known")
        XCTAssertEqual(b.remoteAH, "C:\\ah\\ah.exe")
        XCTAssertEqual(b.sshPort, 2222)
        XCTAssertEqual(b.connect, .accessPoint)
        XCTAssertEqual(b.os, .windows)
        XCTAssertEqual(b.workspace, "/c/proj")
    }

    func testTildeExpansion() throws {
        let config = try FleetConfig.parse("""
            [fleet]
            token_file = "~"
            ca_file = "~/ca.pem"
            agent_state_dir = "~/state/ah agent"
            [filesets.out]
            include = ["dist/*"]
            dest = "~/artifacts"
            """, file: "/r/c.toml", context: Self.context)
        XCTAssertEqual(config.settings.tokenFile, "/home/tester")
        XCTAssertEqual(config.settings.caFile, "/home/tester/ca.pem")
        XCTAssertEqual(config.settings.agentStateDir, "/home/tester/state/ah agent")
        XCTAssertEqual(config.fileset(named: "out")?.dest, "/home/tester/artifacts")
    }

    func testDiscoveryWalksUpFromADirectory() throws {
        let directory = try TemporaryDirectory()
        let root = directory.url.appendingPathComponent("repo")
        let deep = root.appendingPathComponent("src/a/b")
        try FileManager.default.createDirectory(at: deep, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent(".agents"), withIntermediateDirectories: true)
        let path = root.appendingPathComponent(".agents/config.toml").path
        try Data(Self.seedExample.utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(FleetConfig.locate(from: deep.path), path)
        XCTAssertEqual(FleetConfig.locate(from: root.path), path)
        let config = try FleetConfig.discover(from: deep.path, context: Self.context)
        XCTAssertEqual(config.file, path)
        XCTAssertEqual(config.followers.count, 3)
        // A nearer .agents directory without config.toml does not stop the walk.
        try FileManager.default.createDirectory(at: deep.appendingPathComponent(".agents"), withIntermediateDirectories: true)
        XCTAssertEqual(FleetConfig.locate(from: deep.path), path)
    }

    func testDiscoveryWithoutAConfigNamesTheDirectory() throws {
        let directory = try TemporaryDirectory()
        XCTAssertNil(FleetConfig.locate(from: directory.path))
        let error = try configError { try FleetConfig.discover(from: directory.path, context: Self.context) }
        XCTAssertTrue(error.description.contains(directory.path), error.description)
        XCTAssertTrue(error.description.contains(".agents/config.toml"), error.description)
    }

    func testFileProblemsNameTheFile() throws {
        let directory = try TemporaryDirectory()
        let missing = directory.file("nope.toml").path
        var error = try configError { try FleetConfig.load(path: missing, context: Self.context) }
        XCTAssertEqual(error.file, missing)
        XCTAssertTrue(error.description.contains(missing) && error.description.contains("does not exist"), error.description)

        error = try configError { try FleetConfig.load(path: directory.path, context: Self.context) }
        XCTAssertTrue(error.description.contains(directory.path) && error.description.contains("directory"), error.description)

        let bad = try write("[fleet]\nname = \"x\"\nconcurrency = = 2\n", in: directory)
        error = try configError { try FleetConfig.load(path: bad, context: Self.context) }
        XCTAssertTrue(error.description.contains(bad) && error.description.contains("line 3"), error.description)

        let binary = directory.file("binary.toml")
        try Data([0xff, 0xfe, 0x00]).write(to: binary)
        error = try configError { try FleetConfig.load(path: binary.path, context: Self.context) }
        XCTAssertTrue(error.description.contains(binary.path) && error.description.contains("UTF-8"), error.description)
    }

    /// Each mistake: the TOML, the key the error must name, the value as rendered, and a
    /// fragment of the reason.
    func testErrorsNameFileKeyAndValue() throws {
        let member = "[[fleet.members]]\nname = \"a\"\n"
        let cases: [(toml: String, key: String, value: String?, reason: String)] = [
            ("[flet]\nname = \"x\"", "flet", "{ name = \"x\" }", "unknown key"),
            ("colour = \"red\"", "colour", "\"red\"", "unknown key (known keys here: filesets, fleet)"),
            ("[fleet]\nnmae = \"x\"", "fleet.nmae", "\"x\"", "unknown key"),
            ("[fleet]\nname = 5", "fleet.name", "5", "must be a string, not an integer"),
            ("[fleet]\nname = \"\"", "fleet.name", "\"\"", "must not be empty"),
            ("[fleet]\nname = \"a/b\"", "fleet.name", "\"a/b\"", "'/'"),
            (member + "sshuser = \"x\"", "fleet.members[0].sshuser", "\"x\"", "unknown key"),
            (member + "ssh_port = 70000", "fleet.members[0].ssh_port", "70000", "between 1 and 65535"),
            (member + "ssh_port = 0", "fleet.members[0].ssh_port", "0", "between 1 and 65535"),
            (member + "ssh_port = \"22\"", "fleet.members[0].ssh_port", "\"22\"", "must be an integer"),
            (member + "connect = \"tunnel\"", "fleet.members[0].connect", "\"tunnel\"", "\"auto\", \"direct\" or \"access-point\""),
            (member + "role = \"boss\"", "fleet.members[0].role", "\"boss\"", "\"leader\" or \"follower\""),
            (member + "os = \"beos\"", "fleet.members[0].os", "\"beos\"", "\"linux\", \"macos\" or \"windows\""),
            (member + "role = \"leader\"\n" + member.replacingOccurrences(of: "\"a\"", with: "\"b\"") + "role = \"leader\"",
             "fleet.members[1].role", "\"leader\"", "fleet.members[0] is already the leader"),
            (member + member, "fleet.members[1].name", "\"a\"", "fleet.members[0] has the same name"),
            ("[[fleet.members]]\nname = \"web.prod\"", "fleet.members[0].name", "\"web.prod\"", "contains '.'"),
            ("[[fleet.members]]\nname = \"-x\"", "fleet.members[0].name", "\"-x\"", "must start with a letter or digit"),
            ("[[fleet.members]]\nhost = \"h\"", "fleet.members[0].name", nil, "is required"),
            ("[fleet]\nremote_server = \"quic://ap:4433\"", "fleet.remote_server", "\"quic://ap:4433\"", "http:// or https://"),
            ("[fleet]\nremote_server = \"https://\"", "fleet.remote_server", "\"https://\"", "no host"),
            (member + "remote_server = \"ftp://x\"", "fleet.members[0].remote_server", "\"ftp://x\"", "http:// or https://"),
            (member + "tags = { os = \"plan9\" }", "fleet.members[0].tags.os", "\"plan9\"", "\"linux\", \"macos\" or \"windows\""),
            (member + "os = \"linux\"\ntags = { os = \"macos\" }", "fleet.members[0].os", "\"linux\"", "disagrees with tags.os = \"macos\""),
            (member + "tags = { cores = 8 }", "fleet.members[0].tags.cores", "8", "must be a string"),
            (member + "tags = \"os=linux\"", "fleet.members[0].tags", "\"os=linux\"", "must be a table"),
            (member + "os = \"windows\"\nworkspace = \"/home/x\"", "fleet.members[0].workspace", "\"/home/x\"", "no Windows equivalent"),
            (member + "connect = \"direct\"", "fleet.members[0].connect", "\"direct\"", "needs host"),
            (member + "connect = \"access-point\"", "fleet.members[0].connect", "\"access-point\"", "needs remote_server"),
            (member + "host = \"\"", "fleet.members[0].host", "\"\"", "must not be empty"),
            (member + "host = \"a b\"", "fleet.members[0].host", "\"a b\"", "cannot contain ' '"),
            (member + "ssh_user = \"-oProxyCommand=x\"", "fleet.members[0].ssh_user", "\"-oProxyCommand=x\"", "not a user name"),
            (member + "workspace = \"/a\\nb\"", "fleet.members[0].workspace", "\"/a\\nb\"", "control characters"),
            ("[fleet]\ntoken_file = \"~bob/token\"", "fleet.token_file", "\"~bob/token\"", "'~user' is not supported"),
            ("[fleet]\nmembers = [\"a\"]", "fleet.members[0]", "\"a\"", "must be a table"),
            ("[fleet]\nmembers = 3", "fleet.members", "3", "must be an array of tables"),
            ("[fleet.sync]\nignore = [\"a\"]", "fleet.sync.ignore", "[\"a\"]", "unknown key (known keys here: ignores, retention, timeout)"),
            ("[fleet.sync]\nignores = \"node_modules\"", "fleet.sync.ignores", "\"node_modules\"", "must be an array of strings"),
            ("[fleet.sync]\nignores = [\"a\", \"\"]", "fleet.sync.ignores[1]", "\"\"", "must not be empty"),
            ("[fleet.sync]\ntimeout = \"soon\"", "fleet.sync.timeout", "\"soon\"", "not a duration"),
            ("[fleet.sync]\nretention = 0", "fleet.sync.retention", "0", "between 1 and 10000"),
            ("[fleet.sync]\nretention = \"50\"", "fleet.sync.retention", "\"50\"", "must be an integer"),
            ("[fleet.connectivity]\nssh_connect_timeout = \"5\"", "fleet.connectivity.ssh_connect_timeout", "\"5\"", "needs a unit"),
            ("[fleet.connectivity]\nssh_keepalive = 30", "fleet.connectivity.ssh_keepalive", "30", "duration string like \"5s\""),
            ("[fleet.connectivity]\nfailure_threshold = 0", "fleet.connectivity.failure_threshold", "0", "between 1 and 1000"),
            ("[fleet.connectivity]\nhealth_probe = \"30s\"", "fleet.connectivity.health_probe", "\"30s\"", "unknown key"),
            ("[fleet.execution]\nconcurrency = 0", "fleet.execution.concurrency", "0", "between 1 and 1000"),
            ("[fleet.execution]\nconcurrency = 1.5", "fleet.execution.concurrency", "1.5", "must be an integer, not a float"),
            ("[fleet.execution]\ntimeout = \"0s\"", "fleet.execution.timeout", "\"0s\"", "longer than zero"),
            ("[fleet.execution]\ntimeout = 600", "fleet.execution.timeout", "600", "duration string"),
            ("[fleet.execution]\nssh_retry = \"yes\"", "fleet.execution.ssh_retry", "\"yes\"", "true or false"),
            ("[fleet.execution]\nretries = 2", "fleet.execution.retries", "2", "unknown key"),
            ("[filesets.rel]\ninclude = [\"a\"]\nrequird = true", "filesets.rel.requird", "true", "unknown key"),
            ("[filesets.rel]\nexclude = [\"a\"]", "filesets.rel.include", nil, "is required"),
            ("[filesets.rel]\ninclude = []", "filesets.rel.include", "[]", "at least one"),
            ("[filesets.rel]\ninclude = [\"/etc/passwd\"]", "filesets.rel.include[0]", "\"/etc/passwd\"", "relative"),
            ("[filesets.rel]\ninclude = [\"a\", \"../x\"]", "filesets.rel.include[1]", "\"../x\"", "'..'"),
            ("[filesets.rel]\ninclude = [\"a\"]\nexclude = [\"C:\\\\x\"]", "filesets.rel.exclude[0]", "\"C:\\\\x\"", "drive"),
            ("[filesets.\"bad name\"]\ninclude = [\"a\"]", "filesets.\"bad name\"", "{ include = [\"a\"] }", "letters, digits"),
            ("[filesets]\nrel = 1", "filesets.rel", "1", "must be a table"),
            ("[filesets.rel]\ninclude = [\"a\"]\nrequired = \"yes\"", "filesets.rel.required", "\"yes\"", "true or false"),
        ]
        let directory = try TemporaryDirectory()
        for (toml, key, value, reason) in cases {
            let path = try write(toml, in: directory)
            let error = try configError { try FleetConfig.load(path: path, context: Self.context) }
            let text = error.description
            XCTAssertEqual(error.file, path, toml)
            XCTAssertEqual(error.key, key, "\(toml)\n→ \(text)")
            XCTAssertEqual(error.value, value, "\(toml)\n→ \(text)")
            XCTAssertTrue(text.contains(path), text)
            XCTAssertTrue(text.contains("'\(key)'"), text)
            if let value { XCTAssertTrue(text.contains(value), text) }
            XCTAssertTrue(text.contains(reason), "\(toml)\nexpected '\(reason)' in: \(text)")
            XCTAssertFalse(text.contains("\n"), text)
        }
    }

    func testErrorDescriptionLayout() {
        let error = FleetConfigError(file: "/r/.agents/config.toml", key: "fleet.members[1].ssh_port", value: "70000",
                                     reason: "must be between 1 and 65535")
        XCTAssertEqual(error.description,
                       "fleet config '/r/.agents/config.toml': key 'fleet.members[1].ssh_port' = 70000: must be between 1 and 65535")
    }

    func testLeaderEntryNeedsNoConnectivity() throws {
        // The leader is the machine running `ah`: direct without host is no contradiction there.
        let config = try FleetConfig.parse("[[fleet.members]]\nname = \"me\"\nrole = \"leader\"\nconnect = \"direct\"\n",
                                           file: "/r/c.toml", context: Self.context)
        XCTAssertEqual(config.leader?.name, "me")
        XCTAssertTrue(config.followers.isEmpty)
    }

    func testWindowsWorkspaceSpellingsAreAccepted() throws {
        for workspace in ["S:\\\\proj", "/c/proj", "~/proj", "proj", "//srv/share/p"] {
            let toml = "[[fleet.members]]\nname = \"w\"\nos = \"windows\"\nworkspace = \"\(workspace)\"\n"
            XCTAssertNoThrow(try FleetConfig.parse(toml, file: "/r/c.toml", context: Self.context), workspace)
        }
    }

    /// `[fleet.sync] retention`: how many snapshots the content store keeps (default 50).
    func testRetentionIsRead() throws {
        let config = try FleetConfig.parse("[fleet.sync]\nretention = 7\n", file: "/r/c.toml", context: Self.context)
        XCTAssertEqual(config.settings.sync.retention, 7)
        XCTAssertEqual(FleetSettings().sync.retention, 50)
    }

    /// Config/fleet.example.toml parses, its values are the defaults, and it mentions every key.
    func testExampleFileDocumentsEveryKeyWithItsDefault() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Config/fleet.example.toml").path
        let config = try FleetConfig.load(path: path, context: Self.context)
        XCTAssertEqual(config.settings, FleetSettings())
        XCTAssertEqual(config.members, [FleetMember(name: "macos-dev", sshUser: "tester")])
        XCTAssertEqual(config.filesets, [Fileset(name: "release", include: ["target/release/*"])])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let keys = ["name", "remote_server", "token_file", "ca_file", "identity_file", "known_hosts", "agent_state_dir",
                    "remote_ah", "role", "host", "ssh_user", "ssh_port", "connect", "os", "workspace", "tags", "ignores",
                    "timeout", "retention", "ssh_connect_timeout", "ssh_keepalive", "health_probe_interval", "failure_threshold",
                    "concurrency", "ssh_retry", "include", "exclude", "required", "dest"]
        for key in keys { XCTAssertTrue(text.contains("\n\(key) = ") || text.contains("# \(key) = "), key) }
        for table in ["[fleet]", "[[fleet.members]]", "[fleet.sync]", "[fleet.connectivity]", "[fleet.execution]", "[filesets."] {
            XCTAssertTrue(text.contains(table), table)
        }
    }

    // MARK: Helpers

    private func write(_ text: String, in directory: TemporaryDirectory) throws -> String {
        let url = directory.file("config-\(UUID().uuidString.prefix(8)).toml")
        try Data(text.utf8).write(to: url)
        return url.path
    }

    private func configError(_ body: () throws -> FleetConfig, file: StaticString = #filePath,
                             line: UInt = #line) throws -> FleetConfigError {
        do {
            let config = try body()
            XCTFail("expected an error, got \(config)", file: file, line: line)
            throw UnexpectedSuccess()
        } catch let error as FleetConfigError {
            return error
        }
    }
}

struct UnexpectedSuccess: Error {}
