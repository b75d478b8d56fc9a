/// The character and structure rules of the SPIFFE ID specification
/// (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md), checked on UTF-8
/// bytes so that no Unicode normalisation can make two different byte strings compare equal.
enum SPIFFEIDGrammar {
    static let scheme = "spiffe://"
    static let maxIDLength = 2048
    static let maxTrustDomainLength = 255

    /// Trust domain: lower-case letters, digits, '.', '-', '_'.
    static func validateTrustDomain(_ td: String, input: String) throws(SPIFFEIDError) {
        if td.isEmpty { throw SPIFFEIDError(input: input, rule: .missingTrustDomain) }
        if td.utf8.count > maxTrustDomainLength { throw SPIFFEIDError(input: input, rule: .trustDomainTooLong) }
        for byte in td.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                throw SPIFFEIDError(input: input, rule: .trustDomainUppercase)
            case UInt8(ascii: "@"):
                throw SPIFFEIDError(input: input, rule: .trustDomainUserinfo)
            case UInt8(ascii: ":"):
                throw SPIFFEIDError(input: input, rule: .trustDomainPort)
            case UInt8(ascii: "%"):
                throw SPIFFEIDError(input: input, rule: .percentEncoding)
            default:
                throw SPIFFEIDError(input: input, rule: .trustDomainCharacter)
            }
        }
    }

    /// Path: "" or one or more "/segment", no trailing slash.
    static func validatePath(_ path: String, input: String) throws(SPIFFEIDError) {
        if path.isEmpty { return }
        guard path.utf8.first == UInt8(ascii: "/") else { throw SPIFFEIDError(input: input, rule: .pathStart) }
        if path.utf8.last == UInt8(ascii: "/") {
            // "/a//" is reported as a trailing slash; "//" alone likewise.
            throw SPIFFEIDError(input: input, rule: .trailingSlash)
        }
        for segment in path.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            try validateSegment(segment, input: input)
        }
    }

    static func validateSegment(_ segment: some Collection<UInt8>, input: String) throws(SPIFFEIDError) {
        if segment.isEmpty { throw SPIFFEIDError(input: input, rule: .emptySegment) }
        if segment.elementsEqual(".".utf8) || segment.elementsEqual("..".utf8) {
            throw SPIFFEIDError(input: input, rule: .dotSegment)
        }
        for byte in segment where !isSegmentByte(byte) {
            switch byte {
            case UInt8(ascii: "?"): throw SPIFFEIDError(input: input, rule: .query)
            case UInt8(ascii: "#"): throw SPIFFEIDError(input: input, rule: .fragment)
            case UInt8(ascii: "%"): throw SPIFFEIDError(input: input, rule: .percentEncoding)
            default: throw SPIFFEIDError(input: input, rule: .segmentCharacter)
            }
        }
    }

    static func isSegmentByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// Splits and validates a full "spiffe://TD/path" string.
    static func parse(_ input: String) throws(SPIFFEIDError) -> (trustDomain: String, path: String) {
        if input.isEmpty { throw SPIFFEIDError(input: input, rule: .empty) }
        if input.utf8.count > maxIDLength { throw SPIFFEIDError(input: input, rule: .tooLong) }
        // Query, fragment and percent-encoding are refused wherever they appear, before any
        // structural split, so that e.g. "spiffe://td?x" is reported as a query, not a bad character.
        for byte in input.utf8 {
            switch byte {
            case UInt8(ascii: "?"): throw SPIFFEIDError(input: input, rule: .query)
            case UInt8(ascii: "#"): throw SPIFFEIDError(input: input, rule: .fragment)
            case UInt8(ascii: "%"): throw SPIFFEIDError(input: input, rule: .percentEncoding)
            default: continue
            }
        }
        // The scheme is compared byte for byte: "SPIFFE://" is not accepted.
        guard input.utf8.starts(with: scheme.utf8) else { throw SPIFFEIDError(input: input, rule: .scheme) }
        let rest = input.utf8.dropFirst(scheme.utf8.count)
        let slash = rest.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex
        let trustDomain = String(Substring(rest[rest.startIndex..<slash]))
        let path = String(Substring(rest[slash...]))
        try validateTrustDomain(trustDomain, input: input)
        try validatePath(path, input: input)
        return (trustDomain, path)
    }
}
