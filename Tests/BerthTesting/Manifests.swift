import BerthModel

/// Small manifests of one model (`m`, versions v1 and v2), its nodes and deployments, for tests
/// that need a stored fleet.
public enum Manifests {
    public static func node(_ name: String, gpus: Int = 8, port: Int = 20000) -> String {
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

    public static let model = """
        apiVersion: berth/v1
        kind: Model
        metadata: { name: m }
        spec:
          versions:
            - { version: v1, image: "reg:5000/m:v1", parameters: 7B, precision: bf16 }
            - { version: v2, image: "reg:5000/m:v2", parameters: 7B, precision: bf16 }
        """

    public static func deployment(_ name: String, version: String = "v1", replicas: Int = 1) -> String {
        """
        apiVersion: berth/v1
        kind: Deployment
        metadata: { name: \(name) }
        spec: { model: m, version: \(version), replicas: \(replicas) }
        """
    }

    public static func load(_ docs: String...) throws -> [LoadedResource] {
        try ManifestLoader.load(text: docs.joined(separator: "\n---\n"), file: "test.yaml")
    }
}
