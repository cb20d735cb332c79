@testable import BerthControl
import Crypto
import Foundation
import Testing

@Suite("Pseudonyms in logs")
struct PseudonymsTests {
    @Test func sameNameSameSaltSamePseudonym_otherSaltOtherPseudonym_saltFileOwnerOnly() throws {
        let folder = NSTemporaryDirectory() + "berth-salt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let a = try Pseudonyms(stateFolder: folder)
        let again = try Pseudonyms(stateFolder: folder)
        #expect(a.user("alice") == again.user("alice"), "the salt is kept")
        #expect(a.user("alice").hasPrefix("user:") && a.user("alice").count == 15 && a.user("alice") != a.user("bob"))
        let attributes = try FileManager.default.attributesOfItem(atPath: folder + "/log-salt")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let other = Pseudonyms(key: SymmetricKey(size: .bits256))
        #expect(other.user("alice") != a.user("alice"), "without the salt the name cannot be matched")
        #expect(a.redact("standby promoted to active by alice", names: ["alice"]) == "standby promoted to active by \(a.user("alice"))")
    }
}
