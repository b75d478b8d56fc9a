import Foundation

/// A real OpenSSH `sshd` for one test: its own host key, one authorized client key, password
/// authentication off, listening on 127.0.0.1 on a free port. Needs root (privilege
/// separation) and Debian's openssh-server; `SSHDaemon.isAvailable` tells whether both hold.
public final class SSHDaemon: @unchecked Sendable {
    public let directory: URL
    public let port: Int
    public let process: ChildProcess
    /// The client key that may log in (as the current user).
    public let clientKey: String
    public let hostKeyPublic: String

    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") && getuid() == 0
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh")
    }

    /// Starts sshd in `directory` (created if needed) and waits for "Server listening".
    /// `hostKeyFrom` reuses the host key of another daemon (for "same key" setups);
    /// `maxSessions` is sshd's MaxSessions (channels per connection); `port` is a port the
    /// caller reserved (e.g. to give an agent its `--ssh-dst` before sshd runs), else a free one.
    public static func start(in directory: URL, hostKeyFrom other: SSHDaemon? = nil, maxSessions: Int = 50,
                             port requestedPort: Int? = nil) async throws -> SSHDaemon {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        let hostKey = directory.appendingPathComponent("host_key").path
        if let other {
            try? fm.removeItem(atPath: hostKey)
            try fm.copyItem(atPath: other.directory.appendingPathComponent("host_key").path, toPath: hostKey)
            try? fm.removeItem(atPath: hostKey + ".pub")
            try fm.copyItem(atPath: other.directory.appendingPathComponent("host_key.pub").path, toPath: hostKey + ".pub")
            chmod(hostKey, 0o600)
        } else {
            try await keygen(hostKey)
        }
        let clientKey = directory.appendingPathComponent("client_key").path
        try await keygen(clientKey)
        try fm.copyItem(atPath: clientKey + ".pub", toPath: directory.appendingPathComponent("authorized_keys").path)
        let port = try requestedPort ?? Int(Ports.freePort(.tcp))
        // Sessions get an empty HOME of their own (SetEnv overrides sshd's HOME): bash reads
        // ~/.bashrc for every command sshd runs and ~/.profile for `bash -lc`, and root's on
        // this machine runs `pyenv rehash` under a lock file. One rehash killed mid-way (a test
        // that kills a remote process tree) left that lock behind, and every later session
        // waited 60 s for it: the suite must not depend on the machine's dotfiles.
        let home = directory.appendingPathComponent("home")
        try fm.createDirectory(at: home, withIntermediateDirectories: true)
        let config = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(hostKey)
            AuthorizedKeysFile \(directory.appendingPathComponent("authorized_keys").path)
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            UsePAM no
            StrictModes no
            PermitRootLogin prohibit-password
            PidFile \(directory.appendingPathComponent("sshd.pid").path)
            Subsystem sftp /usr/lib/openssh/sftp-server
            MaxStartups 100:30:200
            MaxSessions \(maxSessions)
            LogLevel INFO
            SetEnv HOME=\(home.path)

            """
        let configPath = directory.appendingPathComponent("sshd_config").path
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let process = ChildProcess(executable: URL(fileURLWithPath: "/usr/sbin/sshd"), arguments: ["-D", "-e", "-f", configPath])
        try process.start()
        do {
            try await process.waitForStderr(containing: "Server listening on 127.0.0.1 port \(port)", timeout: 10)
        } catch {
            _ = await process.terminate(grace: 1)
            throw error
        }
        let publicKey = try String(contentsOfFile: hostKey + ".pub", encoding: .utf8)
        return SSHDaemon(directory: directory, port: port, process: process, clientKey: clientKey, hostKeyPublic: publicKey)
    }

    private init(directory: URL, port: Int, process: ChildProcess, clientKey: String, hostKeyPublic: String) {
        self.directory = directory
        self.port = port
        self.process = process
        self.clientKey = clientKey
        self.hostKeyPublic = hostKeyPublic
    }

    private static func keygen(_ path: String) async throws {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: path + ".pub")
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh-keygen"),
                                                 ["-q", "-t", "ed25519", "-N", "", "-f", path])
        guard result.exit.succeeded else { throw RawSocketError("ssh-keygen failed: \(result.transcript)") }
    }

    public func stop() async {
        _ = await process.terminate(grace: 2)
    }

    /// `ssh` options for a non-interactive client with this daemon's key.
    public var clientOptions: [String] {
        ["-i", clientKey, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"]
    }
}
