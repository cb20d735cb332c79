import Crypto
import Foundation

/// Stands in for identifiers that could be personal (user names of authors) wherever the
/// controller writes them to its log: a keyed hash with a secret salt kept beside the state, so
/// one person always reads as the same `user:…` and nobody without the salt can tell who.
/// The state database keeps the real names (`berth history`), readable by the state's owner only.
public struct Pseudonyms: Sendable {
    let key: SymmetricKey

    /// Reads the salt from `<state folder>/log-salt`, creating it (32 random bytes, owner-only) and
    /// the folder (owner-only: a PostgreSQL state's folder is made on first use) when missing.
    public init(stateFolder: String) throws {
        let path = stateFolder + "/log-salt"
        if let data = FileManager.default.contents(atPath: path), data.count >= 16 {
            key = SymmetricKey(data: data)
            return
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
        try? FileManager.default.createDirectory(atPath: stateFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw SaltUnwritable(path: path)
        }
        key = SymmetricKey(data: bytes)
    }

    init(key: SymmetricKey) { self.key = key }

    /// `user:` and the first 10 hex digits of HMAC-SHA256(salt, name).
    public func user(_ name: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(name.utf8), using: key)
        return "user:" + mac.prefix(5).map { String(format: "%02x", $0) }.joined()
    }

    /// `text` with each of `names` replaced by its pseudonym.
    public func redact(_ text: String, names: [String]) -> String {
        names.filter { !$0.isEmpty }.reduce(text) { $0.replacingOccurrences(of: $1, with: user($1)) }
    }
}

/// The log salt cannot be written: the state folder is missing or not writable.
public struct SaltUnwritable: Error, CustomStringConvertible {
    public var path: String
    public var description: String { "cannot write the log salt \(path): make its folder exist and writable by this user" }
}
