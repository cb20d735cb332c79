import BerthModel
import Foundation

/// Small valid manifests that tests change one field of.
enum Fixture {
    static let node = """
        apiVersion: berth/v1
        kind: Node
        metadata:
          name: gpu-a1
        spec:
          address: 10.0.0.11
          engine:
            endpoint: unix:///var/run/docker.sock
          gpus:
            count: 8
            model: A100-SXM4-80GB
            memoryGiB: 80
        """

    static let model = """
        apiVersion: berth/v1
        kind: Model
        metadata:
          name: qwen-7b
        spec:
          versions:
            - version: v1
              image: registry.local:5000/standin:v1
              parameters: 7.6B
              precision: bf16
              artifacts:
                - path: /models/qwen-7b/v1/model.safetensors
                  sha256: \(String(repeating: "ab", count: 32))
            - version: v2
              image: registry.local:5000/standin:v2
              parameters: 7.6B
              precision: bf16
        """

    static let deployment = """
        apiVersion: berth/v1
        kind: Deployment
        metadata:
          name: chat
        spec:
          model: qwen-7b
          version: v1
          replicas: 2
        """

    static let gateway = """
        apiVersion: berth/v1
        kind: Gateway
        metadata:
          name: public
        spec:
          listen: 8080
          routes:
            - deployment: chat
              weight: 100
        """

    static var fleet: String { [node, model, deployment, gateway].joined(separator: "\n---\n") }

    /// A fresh temporary folder.
    static func temporaryFolder() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("berth-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Loads text and runs the fleet checks the way `apply` does against an empty store.
    static func validate(_ text: String, file: String = "test.yaml") -> [ManifestIssue] {
        do {
            let loaded = try ManifestLoader.load(text: text, file: file)
            return FleetValidator.validate(input: loaded, others: [])
        } catch let error as ManifestErrors {
            return error.issues
        } catch {
            return [ManifestIssue(location: nil, object: nil, field: "", problem: "\(error)")]
        }
    }
}
