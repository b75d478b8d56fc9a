/// What a follower's file system cannot hold, as pure functions (the leader checks a
/// snapshot against the member's OS before sending it; the receiver checks again).
public enum NameRules {
    /// Pairs of paths that are one name on a case-insensitive file system (macOS, Windows
    /// by default), as sentences naming both. Case is folded per Unicode's lowercase mapping.
    public static func caseCollisions(_ paths: [String]) -> [String] {
        var seen: [String: String] = [:]
        var problems: [String] = []
        for path in paths {
            let folded = path.lowercased()
            if let other = seen[folded], other != path {
                problems.append("'\(other)' and '\(path)' are the same name on a case-insensitive file system")
            } else {
                seen[folded] = path
            }
        }
        return problems
    }

    static let reservedWindowsNames: Set<String> = {
        var names: Set<String> = ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
        for digit in 1...9 {
            names.insert("COM\(digit)")
            names.insert("LPT\(digit)")
        }
        return names
    }()

    /// Why a Windows follower cannot hold `path` under `workspace` (a mapped Windows path
    /// such as `S:\proj`), or nil. Rules (Microsoft's "Naming Files, Paths, and Namespaces"):
    /// no `< > : " | ? *` or control characters, no reserved device name (also with an
    /// extension, any case), no component ending in a space or a dot, and the full path
    /// within MAX_PATH (260 characters including the terminating NUL: 259 usable).
    public static func windowsProblem(_ path: String, workspace: String = "") -> String? {
        for component in path.split(separator: "/") {
            if let bad = component.unicodeScalars.first(where: { $0.value < 0x20 || "<>:\"|?*\\".unicodeScalars.contains($0) }) {
                let shown = bad.value < 0x20 ? String(format: "U+%04X", bad.value) : String(bad)
                return "'\(path)' has the character \(shown), which Windows does not allow in a name"
            }
            let stem = component.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            if reservedWindowsNames.contains(stem.uppercased().trimmingTrailingSpaces()) {
                return "'\(path)' uses the reserved Windows device name '\(stem)'"
            }
            if component.hasSuffix(" ") || component.hasSuffix(".") {
                return "'\(path)' has a name ending in a space or a dot, which Windows drops"
            }
        }
        let full = workspace.isEmpty ? path.utf16.count : workspace.utf16.count + 1 + path.utf16.count
        if full > 259 {
            return "'\(path)' is \(full) characters long with the workspace \(workspace.isEmpty ? "" : "'\(workspace)' "), more than Windows' 259"
        }
        return nil
    }

    /// A manifest path as the Windows follower spells it under its mapped workspace.
    public static func windowsPath(_ path: String, workspace: String) -> String {
        let base = workspace.hasSuffix("\\") ? String(workspace.dropLast()) : workspace
        return base + "\\" + path.replacingOccurrences(of: "/", with: "\\")
    }
}

extension StringProtocol {
    func trimmingTrailingSpaces() -> String {
        var text = String(self)
        while text.hasSuffix(" ") { text.removeLast() }
        return text
    }
}
