/// Quoting one word so a shell reads it back byte for byte. Both work on Unicode scalars,
/// not on `Character`s: a quote followed by a combining mark is one `Character` in Swift but
/// still a quote to the shell.
public enum ShellQuoting {
    /// POSIX sh (bash, zsh, dash): the word in single quotes, each `'` written as `'\''`
    /// (close, escaped quote, reopen). Inside single quotes nothing is special — `$`,
    /// backticks, `\`, `!` in a non-interactive shell, globs, newlines — so only `'` needs care.
    /// The empty word is `''`. NUL cannot be passed at all (callers refuse it).
    public static func posix(_ word: String) -> String {
        var quoted = "'"
        for scalar in word.unicodeScalars {
            if scalar == "'" { quoted += #"'\''"# } else { quoted.unicodeScalars.append(scalar) }
        }
        return quoted + "'"
    }

    /// The characters PowerShell's tokenizer accepts as a single quote: ASCII `'` and the
    /// typographic ‘ ’ ‚ ‛ (U+2018-U+201B).
    public static let powerShellSingleQuotes: Set<Unicode.Scalar> = ["'", "\u{2018}", "\u{2019}", "\u{201A}", "\u{201B}"]

    /// PowerShell verbatim string: the word in `'...'`, each of `powerShellSingleQuotes`
    /// doubled (PowerShell reads a doubled quote character as that character). Nothing else
    /// is special inside: `$`, backticks, `"`, newlines stay as they are.
    public static func powerShell(_ word: String) -> String {
        var quoted = "'"
        for scalar in word.unicodeScalars {
            quoted.unicodeScalars.append(scalar)
            if powerShellSingleQuotes.contains(scalar) { quoted.unicodeScalars.append(scalar) }
        }
        return quoted + "'"
    }
}
