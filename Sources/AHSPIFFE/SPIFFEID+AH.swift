/// The two identity shapes `ah` uses (see docs/design: "Identities").
extension SPIFFEID {
    /// `spiffe://TD/ah/agent/NAME`: the identity of an executor named NAME.
    /// NAME must be exactly one path segment, so that "a/b" cannot mint a deeper identity.
    public static func agent(trustDomain: String, name: String) throws(SPIFFEIDError) -> SPIFFEID {
        try SPIFFEIDGrammar.validateSegment(name.utf8, input: SPIFFEIDGrammar.scheme + trustDomain + "/ah/agent/" + name)
        return try SPIFFEID(trustDomain: trustDomain, path: "/ah/agent/" + name)
    }

    /// `spiffe://TD/ah/serve`: the identity of an access point.
    public static func accessPoint(trustDomain: String) throws(SPIFFEIDError) -> SPIFFEID {
        try SPIFFEID(trustDomain: trustDomain, path: "/ah/serve")
    }
}
