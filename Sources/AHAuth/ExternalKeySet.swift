import Foundation
import JWTKit

/// The public keys of an external issuer, read from a JWKS file (RFC 7517).
///
/// Every key is checked before JWTKit sees it, so a bad file fails at start with a message
/// naming the key, instead of tokens failing later with a vague one. Only RS256 and ES256
/// verification keys are accepted: a shared secret (`oct`), `none`, PS*, EdDSA or a private key
/// in the file is refused, and each key is pinned to one algorithm so that a token's `alg`
/// header can never choose how its own signature is checked.
struct ExternalKeySet: Sendable {
    /// One usable key: its `kid` (nil when the file's only key has none) and its algorithm.
    struct Key: Sendable, Equatable {
        let kid: String?
        let algorithm: String
        /// The name it is stored under in `collection` (JWTKit requires one).
        let storageID: String
    }

    static let maxFileBytes = 1024 * 1024
    static let maxKeys = 100
    /// RSA moduli below 2048 bits are factorable by well-funded attackers (NIST SP 800-131A).
    static let minRSABits = 2048
    static let acceptedAlgorithms = ["RS256", "ES256"]

    let keys: [Key]
    let collection: JWTKeyCollection

    /// The key a token's header names: its `kid`, else the file's only key. A file whose only
    /// key has no `kid` accepts any `kid`: there is nothing to tell keys apart by. A `kid` that
    /// names no key is refused, never answered with some other key.
    func key(forKID kid: String?) -> Key? {
        if keys.count == 1, let only = keys.first, kid == nil || only.kid == nil || only.kid == kid { return only }
        guard let kid else { return nil }
        return keys.first { $0.kid == kid }
    }

    static func load(path: String) async throws(UserTokenError) -> ExternalKeySet {
        let data = try read(path)
        let objects = try keyObjects(data, path: path)
        var keys: [Key] = []
        for (index, object) in objects.enumerated() {
            let key = try check(object, index: index + 1, count: objects.count, path: path)
            guard !keys.contains(where: { $0.kid != nil && $0.kid == key.kid }) else {
                throw .issuerConfiguration("JWKS file '\(path)': key \(index + 1) repeats kid '\(UserTokenError.printable(key.kid ?? ""))'")
            }
            keys.append(key)
        }
        // Every key passed the checks above, so JWTKit's decoding only fails on odd encodings.
        let decoded: JWKS
        do {
            decoded = try JSONDecoder().decode(JWKS.self, from: data)
        } catch {
            throw .issuerConfiguration("JWKS file '\(path)' could not be decoded as a JWKS: \(error)")
        }
        guard decoded.keys.count == keys.count else {
            throw .issuerConfiguration("JWKS file '\(path)' could not be decoded as a JWKS")
        }
        let jwks = zip(decoded.keys, keys).map { jwk, key in
            var pinned = jwk
            // Pinned, so JWTKit builds the verifier now and never from a token's header.
            pinned.algorithm = key.algorithm == "RS256" ? .rs256 : .es256
            pinned.keyIdentifier = JWKIdentifier(string: key.storageID)
            return pinned
        }
        let collection = JWTKeyCollection()
        for (index, jwk) in jwks.enumerated() {
            do {
                try await collection.add(jwk: jwk)
            } catch {
                throw .issuerConfiguration("JWKS file '\(path)': key \(index + 1)\(describe(keys[index].kid)) "
                    + "is not a valid \(keys[index].algorithm == "RS256" ? "RSA" : "P-256") public key")
            }
        }
        return ExternalKeySet(keys: keys, collection: collection)
    }

    private static func read(_ path: String) throws(UserTokenError) -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw .issuerConfiguration("JWKS file '\(path)' does not exist")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        guard size <= maxFileBytes else {
            throw .issuerConfiguration("JWKS file '\(path)' is \(size) bytes; the limit is \(maxFileBytes)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .issuerConfiguration("JWKS file '\(path)' cannot be read")
        }
        guard data.count <= maxFileBytes else {
            throw .issuerConfiguration("JWKS file '\(path)' is larger than \(maxFileBytes) bytes")
        }
        return data
    }

    private static func keyObjects(_ data: Data, path: String) throws(UserTokenError) -> [[String: Any]] {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .issuerConfiguration("JWKS file '\(path)' is not a JSON object")
        }
        guard let list = root["keys"] as? [Any] else {
            throw .issuerConfiguration("JWKS file '\(path)' has no \"keys\" array")
        }
        guard !list.isEmpty else { throw .issuerConfiguration("JWKS file '\(path)' has no keys") }
        guard list.count <= maxKeys else {
            throw .issuerConfiguration("JWKS file '\(path)' has \(list.count) keys; the limit is \(maxKeys)")
        }
        var objects: [[String: Any]] = []
        for (index, item) in list.enumerated() {
            guard let object = item as? [String: Any] else {
                throw .issuerConfiguration("JWKS file '\(path)': key \(index + 1) is not a JSON object")
            }
            objects.append(object)
        }
        return objects
    }

    /// The key's pinned algorithm, or why it is refused.
    private static func check(_ object: [String: Any], index: Int, count: Int, path: String) throws(UserTokenError) -> Key {
        var kid: String?
        if let value = object["kid"] {
            guard let string = value as? String, !string.isEmpty else {
                throw .issuerConfiguration("JWKS file '\(path)': key \(index) has an empty or non-string kid")
            }
            kid = string
        }
        func refuse(_ reason: String) -> UserTokenError {
            .issuerConfiguration("JWKS file '\(path)': key \(index)\(describe(kid)) \(reason)")
        }
        if count > 1, kid == nil { throw refuse("has no kid; every key needs one when the file has several") }
        guard let kty = object["kty"] as? String else { throw refuse("has no kty") }
        if let use = object["use"] {
            guard use as? String == "sig" else { throw refuse("has use '\(use)'; only signature keys (\"sig\") are accepted") }
        }
        if object["d"] != nil || object["k"] != nil {
            throw refuse("contains private or secret key material; the file must hold public keys only")
        }
        var algorithm: String?
        if let value = object["alg"] {
            guard let string = value as? String else { throw refuse("has a non-string alg") }
            algorithm = string
        }
        let accepted = acceptedAlgorithms.joined(separator: " and ")
        if let algorithm, !acceptedAlgorithms.contains(algorithm) {
            throw refuse("has alg '\(algorithm)'; only \(accepted) keys are accepted")
        }
        let storageID = kid ?? "ah-jwks-key-\(index)"
        switch kty {
        case "RSA":
            guard algorithm == nil || algorithm == "RS256" else { throw refuse("is an RSA key with alg '\(algorithm!)'") }
            guard let n = object["n"] as? String, let e = object["e"] as? String, !e.isEmpty,
                  let modulus = UnverifiedJWT.base64URLDecode(n.utf8), UnverifiedJWT.base64URLDecode(e.utf8) != nil else {
                throw refuse("is an RSA key without valid n and e")
            }
            let bits = modulus.drop(while: { $0 == 0 }).count * 8
            guard bits >= minRSABits else { throw refuse("is a \(bits)-bit RSA key; at least \(minRSABits) bits are required") }
            return Key(kid: kid, algorithm: "RS256", storageID: storageID)
        case "EC":
            guard object["crv"] as? String == "P-256" else {
                throw refuse("is an EC key on curve '\(object["crv"].map { "\($0)" } ?? "")'; only P-256 (ES256) is accepted")
            }
            guard algorithm == nil || algorithm == "ES256" else { throw refuse("is a P-256 key with alg '\(algorithm!)'") }
            guard object["x"] is String, object["y"] is String else { throw refuse("is an EC key without x and y") }
            return Key(kid: kid, algorithm: "ES256", storageID: storageID)
        case "oct":
            throw refuse("is a symmetric (oct) key; a shared secret cannot verify tokens from another party, only \(accepted) are accepted")
        case "OKP":
            throw refuse("is an OKP (EdDSA) key; only \(accepted) keys are accepted")
        default:
            throw refuse("has unsupported kty '\(kty)'; only \(accepted) keys are accepted")
        }
    }

    private static func describe(_ kid: String?) -> String {
        kid.map { " (kid '\(UserTokenError.printable($0))')" } ?? ""
    }
}
