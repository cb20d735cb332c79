import BerthModel
import BerthStore
import Foundation

func options(_ message: String = "", prune: Bool = false, dryRun: Bool = false) -> ApplyOptions {
    ApplyOptions(author: "tester", message: message, dryRun: dryRun, prune: prune)
}

func temporaryPath(_ name: String = "berth.db") -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-store-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// The bytes of a file, to prove a failed operation left it untouched.
func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }
