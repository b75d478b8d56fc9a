/// A failure with the exit code shared/cli.md assigns to it.
struct CLIError: Error {
    let message: String
    let exitCode: Int32

    /// Exit 1: the work itself failed (a transfer mismatched, a host failed).
    static func failed(_ message: String) -> CLIError { CLIError(message: message, exitCode: 1) }
    /// Exit 2: bad usage or bad input; the message names the bad value.
    static func usage(_ message: String) -> CLIError { CLIError(message: message, exitCode: 2) }
    /// Exit 3: the peer is not reachable or refused us.
    static func unreachable(_ message: String) -> CLIError { CLIError(message: message, exitCode: 3) }
}
