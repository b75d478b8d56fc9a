#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A started child: its pid (also its process group and session id, thanks to setsid) and
/// the read ends of its stdout and stderr pipes (close-on-exec, owned by the caller).
struct SpawnedChild {
    let pid: pid_t
    let stdout: Int32
    let stderr: Int32
}

struct SpawnError: Error, CustomStringConvertible {
    let description: String
}

/// posix_spawn with the options a job needs: a new session (so the job is its own process
/// group and has no controlling terminal), stdin from /dev/null, stdout/stderr into pipes,
/// every signal at its default disposition (the helper ignores SIGPIPE, which exec would
/// otherwise pass on) and an empty signal mask. No fork: the helper is multi-threaded.
enum ChildSpawner {
    #if os(Linux)
    /// glibc ≥ 2.26's POSIX_SPAWN_SETSID (hidden behind _GNU_SOURCE in the imported header).
    private static let spawnSetSID: Int16 = 0x80
    #else
    private static let spawnSetSID: Int16 = 0x400
    #endif

    static func spawn(argv: [String], addedEnvironment: [String: String], cwd: String?) throws(SpawnError) -> SpawnedChild {
        guard let program = argv.first, !program.isEmpty else { throw SpawnError(description: "argv is empty") }
        if let cwd {
            var info = stat()
            guard stat(cwd, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw SpawnError(description: "the working directory '\(cwd)' is not a directory")
            }
        }
        let out = try makePipe()
        let err: (read: Int32, write: Int32)
        do {
            err = try makePipe()
        } catch {
            close(out.read)
            close(out.write)
            throw error
        }
        defer {
            // The child holds its own copies; the helper keeps only the read ends.
            close(out.write)
            close(err.write)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, out.write, 1)
        posix_spawn_file_actions_adddup2(&actions, err.write, 2)
        if let cwd {
            guard let addChdir = SpawnExtensions.addChdir else {
                closeBoth(out, err)
                throw SpawnError(description: "this system's posix_spawn cannot set a working directory ('\(cwd)')")
            }
            _ = cwd.withCString { addChdir(&actions, $0) }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF) | Int16(POSIX_SPAWN_SETSIGMASK) | spawnSetSID)

        let environment = mergedEnvironment(adding: addedEnvironment)
        var pid: pid_t = 0
        let status = withCStrings(argv) { argvPointers in
            withCStrings(environment) { envPointers in
                posix_spawnp(&pid, program, &actions, &attributes, argvPointers, envPointers)
            }
        }
        guard status == 0 else {
            closeBoth(out, err)
            throw SpawnError(description: "could not start '\(program)': \(String(cString: strerror(status)))")
        }
        return SpawnedChild(pid: pid, stdout: out.read, stderr: err.read)
    }

    /// The helper's environment with `added` laid over it (`KEY=VALUE` strings).
    static func mergedEnvironment(adding added: [String: String]) -> [String] {
        var merged: [String: String] = [:]
        var order: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let line = String(cString: pointer)
            if let equals = line.firstIndex(of: "=") {
                let key = String(line[..<equals])
                if merged.updateValue(String(line[line.index(after: equals)...]), forKey: key) == nil { order.append(key) }
            }
            entry += 1
        }
        for key in added.keys.sorted() where merged.updateValue(added[key]!, forKey: key) == nil {
            order.append(key)
        }
        return order.map { "\($0)=\(merged[$0]!)" }
    }

    private static func makePipe() throws(SpawnError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        // pipe2 is hidden with _GNU_SOURCE; pipe + FD_CLOEXEC has no window here because
        // the helper spawns from one thread only (its input thread).
        let result = pipe(&fds)
        if result == 0 {
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        }
        guard result == 0 else { throw SpawnError(description: "could not create a pipe: \(String(cString: strerror(errno)))") }
        return (fds[0], fds[1])
    }

    private static func closeBoth(_ out: (read: Int32, write: Int32), _ err: (read: Int32, write: Int32)) {
        close(out.read)
        close(err.read)
    }

    /// A NULL-terminated `char *[]` valid during `body`.
    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// posix_spawn extensions the imported headers hide (declared only under _GNU_SOURCE),
/// looked up by name once.
private enum SpawnExtensions {
    typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let addChdir: AddChdir? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "posix_spawn_file_actions_addchdir_np") else {
            return nil
        }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()
}
