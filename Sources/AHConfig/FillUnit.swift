// Grouping a command's arguments into the settings that take one value from one source:
// each option or flag on its own, except that a `--x` / `--no-x` flag pair (ArgumentParser
// describes it as two flags) is one setting, so env for one side beats file for the other.

/// One name a setting can be looked up by, and how a value for it turns into tokens.
struct FillCandidate {
    let name: String
    let kind: ArgumentDescription.Kind
    let isRepeating: Bool
    /// For a flag of an inverted pair: the other side's name, inserted for a false value.
    let opposite: String?
}

struct FillUnit {
    /// Every name of every argument in the unit, to tell whether the user gave it.
    let allNames: Set<ArgumentDescription.Name>
    /// Fillable long names, in lookup order (the positive side first).
    let candidates: [FillCandidate]

    static func units(of arguments: [ArgumentDescription]) -> [FillUnit] {
        let named = arguments.enumerated().filter { $0.element.kind != .positional }
        var partner: [Int: Int] = [:]  // positive flag index → negative flag index
        for (i, positive) in named where positive.kind == .flag {
            let negatives = Set(positive.longNames.flatMap(negativeNames(of:)))
            if let (j, _) = named.first(where: { $0.offset != i && $0.element.kind == .flag
                && !negatives.isDisjoint(with: $0.element.longNames) }) {
                partner[i] = j
            }
        }
        let negativeIndices = Set(partner.values)
        return named.compactMap { index, argument in
            if negativeIndices.contains(index) { return nil }
            let negative = partner[index].map { arguments[$0] }
            let positiveNames = argument.longNames.filter(OptionFill.isFillable)
            let negativeNames = negative.map { $0.longNames.filter(OptionFill.isFillable) } ?? []
            var candidates = positiveNames.map {
                FillCandidate(name: $0, kind: argument.kind, isRepeating: argument.isRepeating, opposite: negativeNames.first)
            }
            candidates += negativeNames.map {
                FillCandidate(name: $0, kind: .flag, isRepeating: false, opposite: positiveNames.first)
            }
            guard !candidates.isEmpty else { return nil }
            let allNames = Set((argument.names ?? []) + (negative?.names ?? []))
            return FillUnit(allNames: allNames, candidates: candidates)
        }
    }

    /// ArgumentParser's inversions: `x` ↔ `no-x`, `enable-x` ↔ `disable-x`.
    private static func negativeNames(of name: String) -> [String] {
        var names = ["no-" + name]
        if name.hasPrefix("enable-") { names.append("disable-" + name.dropFirst("enable-".count)) }
        return names
    }
}
