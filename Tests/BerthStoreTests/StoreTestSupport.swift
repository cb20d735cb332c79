import BerthModel
import BerthStore
import Foundation

enum Manifests {
    static func node(_ name: String, gpus: Int = 8, port: Int = 20000) -> String {
        """
        apiVersion: berth/v1
        kind: Node
        metadata: { name: \(name) }
        spec:
          address: 10.0.0.1
          engine: { endpoint: "unix:///run/\(name).sock" }
          gpus: { count: \(gpus), memoryGiB: 80 }
          ports: { from: \(port), to: \(port + 99) }
        """
    }

    static let model = """
        apiVersion: berth/v1
        kind: Model
        metadata: { name: m }
        spec:
          versions:
            - { version: v1, image: "reg:5000/m:v1", parameters: 7B, precision: bf16 }
            - { version: v2, image: "reg:5000/m:v2", parameters: 7B, precision: bf16 }
        """

    static func deployment(_ name: String, version: String = "v1", replicas: Int = 1) -> String {
        """
        apiVersion: berth/v1
        kind: Deployment
        metadata: { name: \(name) }
        spec: { model: m, version: \(version), replicas: \(replicas) }
        """
    }

    static func load(_ docs: String...) throws -> [LoadedResource] {
        try ManifestLoader.load(text: docs.joined(separator: "\n---\n"), file: "test.yaml")
    }
}

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
