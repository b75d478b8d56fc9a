import Foundation

/// Where per-user files go. `$HOME` wins over the password database (Foundation's
/// `NSHomeDirectory()` on Linux reads the latter), so a user, a test or a service that sets
/// HOME gets its files there, as OpenSSH and every shell tool would.
enum UserPaths {
    static var home: String {
        if let home = ProcessInfo.processInfo.environment["HOME"], home.hasPrefix("/") { return home }
        return NSHomeDirectory()
    }

    /// `$XDG_CONFIG_HOME/ah`, else `~/.config/ah`.
    static var configDirectory: String {
        if let xdg = ProcessInfo.processInfo.environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/ah" }
        return home + "/.config/ah"
    }
}
