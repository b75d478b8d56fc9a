/// Character classes the grammars of this module share (ASCII only, on purpose: names end
/// up in shells, paths and SPIFFE IDs).
enum ASCII {
    static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
        (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
    }

    static func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar >= "0" && scalar <= "9" }

    /// `[A-Za-z_][A-Za-z0-9_]*`: an environment variable name every shell (POSIX and
    /// PowerShell's `$env:NAME`) accepts without quoting.
    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, isLetter(first) || first == "_" else { return false }
        return text.unicodeScalars.allSatisfy { isLetter($0) || isDigit($0) || $0 == "_" }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool { scalar.value < 0x20 || scalar.value == 0x7f }
}
