import BerthDocker
import BerthModel
import Foundation
import Testing

/// The engines `scripts/local-cluster up` started. Integration tests run only with BERTH_INTEGRATION=1
/// (as `.ci/run` and `scripts/test` set it); then a missing cluster is a failure, not a skip.
enum LocalCluster {
    static let enabled = ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1"
    static let run = ProcessInfo.processInfo.environment["BERTH_CLUSTER_RUN"] ?? "/run/berth-local"
    static let registry = "127.0.0.1:\(ProcessInfo.processInfo.environment["BERTH_REGISTRY_PORT"] ?? "5000")"
    static let imageV1 = "\(registry)/berth/standin:v1"
    static let imageV2 = "\(registry)/berth/standin:v2"

    static func socket(_ node: Int) -> String { "unix://\(run)/node-\(node)/docker.sock" }
    static func tlsPort(_ node: Int) -> Int { 23750 + node }
    static func tls(rogue: Bool = false) -> TLSFiles {
        rogue ? TLSFiles(ca: "\(run)/pki/ca.pem", cert: "\(run)/pki/rogue.pem", key: "\(run)/pki/rogue-key.pem")
              : TLSFiles(ca: "\(run)/pki/ca.pem", cert: "\(run)/pki/client.pem", key: "\(run)/pki/client-key.pem")
    }

    static func client(_ node: Int) async throws -> DockerClient {
        try await DockerClient.connect(DockerEndpoint(socket(node)))
    }

    /// Runs the docker CLI against a node (for setting up what Berth must not touch).
    @discardableResult
    static func docker(_ node: Int, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/docker")
        process.arguments = ["-H", socket(node)] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A unique deployment name per test, so tests can share engines.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// A placement of the stand-in image on a local node, listening on `port`.
func standinPlacement(_ deployment: String, node: Int, port: Int, image: String = LocalCluster.imageV1, gpus: [Int] = [0],
                      runtime: NodeSpec.Runtime = .runc, env: [String: String] = [:]) -> ReplicaPlacement {
    let model = ModelVersion(version: "v1", image: image, parameters: ParameterCount(7_000_000_000), precision: .bf16)
    let spec = DeploymentSpec(model: "standin", version: "v1", replicas: 1, gpusPerReplica: gpus.count, env: env)
    let nodeSpec = NodeSpec(address: "127.0.0.1", engine: EngineEndpoint(endpoint: LocalCluster.socket(node)), runtime: runtime,
                            network: .host, gpus: GPUInventory(count: 4, memoryGiB: 80))
    return ReplicaPlacement(deployment: deployment, spec: spec, model: model, replica: 0, node: "node-\(node)", nodeSpec: nodeSpec,
                            gpus: gpus, hostPort: port, revision: 1)
}

/// A free port in the node's host-port range.
func freePort(node: Int) -> Int {
    PortAllocator.shared.next(node: node)
}

/// Hands out each node's test ports 50–99 of its range in turn, so that tests running at once
/// never pick the same port (random picks collided now and then: nodes share one host network).
final class PortAllocator: @unchecked Sendable {
    static let shared = PortAllocator()
    private let lock = NSLock()
    private var used: [Int: Int] = [:]

    func next(node: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let n = used[node, default: Int.random(in: 0..<50)]
        used[node] = n + 1
        return 21000 + (node - 1) * 100 + 50 + n % 49  // 21099 is kept for the missing-image test
    }
}
