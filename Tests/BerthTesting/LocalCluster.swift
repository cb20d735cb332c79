import BerthDocker
import BerthModel
import Foundation

/// The engines `scripts/local-cluster up` started, as every integration test sees them. Its
/// constants follow `scripts/lib/cluster.sh` (and the same environment overrides). Integration
/// tests run only with BERTH_INTEGRATION=1 (as `.ci/run` and `scripts/test` set it); then a
/// missing cluster is a failure, not a skip.
public enum LocalCluster {
    static let environment = ProcessInfo.processInfo.environment
    public static let enabled = environment["BERTH_INTEGRATION"] == "1"
    /// The repository, for the shipped manifests.
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let run = environment["BERTH_CLUSTER_RUN"] ?? "/run/berth-local"
    public static let registry = "127.0.0.1:\(environment["BERTH_REGISTRY_PORT"] ?? "5000")"
    public static let imageV1 = "\(registry)/berth/standin:v1"
    /// The stand-in with the server as its entrypoint (as vLLM's image), no command.
    public static let imageWithEntrypoint = "\(registry)/berth/standin:entrypoint"
    public static let imageV2 = "\(registry)/berth/standin:v2"
    /// Node N's replica ports start at `portBase + (N - 1) * 100`.
    public static let portBase = Int(environment["BERTH_CLUSTER_PORT_BASE"] ?? "") ?? 21000
    static let tlsPortBase = Int(environment["BERTH_CLUSTER_TLS_PORT_BASE"] ?? "") ?? 23750
    /// The nodes manifest `local-cluster up` writes, and the example fleet for it.
    public static let nodes = root.appendingPathComponent("state/local-cluster/nodes.yaml").path
    public static let fleet = root.appendingPathComponent("examples/local/fleet.yaml").path

    /// The example fleet, changed by `edit`, written to a new file in `dir`; its path.
    public static func fleetFile(in dir: String, _ edit: (String) -> String = { $0 }) -> String {
        let path = dir + "/fleet-\(UUID().uuidString.prefix(8)).yaml"
        try! edit(try! String(contentsOfFile: fleet, encoding: .utf8)).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Where node N keeps staged model files (its manifest's `storage.modelRoot`).
    public static func modelRoot(_ node: Int) -> String {
        "\(environment["BERTH_CLUSTER_DATA"] ?? "/var/lib/berth-local")/models/node-\(node)"
    }

    public static func socket(_ node: Int) -> String { "unix://\(run)/node-\(node)/docker.sock" }
    public static func tlsPort(_ node: Int) -> Int { tlsPortBase + node }
    public static func tls(rogue: Bool = false) -> TLSFiles {
        rogue ? TLSFiles(ca: "\(run)/pki/ca.pem", cert: "\(run)/pki/rogue.pem", key: "\(run)/pki/rogue-key.pem")
              : TLSFiles(ca: "\(run)/pki/ca.pem", cert: "\(run)/pki/client.pem", key: "\(run)/pki/client-key.pem")
    }

    public static func client(_ node: Int) async throws -> DockerClient {
        try await DockerClient.connect(DockerEndpoint(socket(node)))
    }

    /// Runs the docker CLI against a node (for setting up what Berth must not touch); its output.
    @discardableResult
    public static func docker(_ node: Int, _ arguments: [String]) throws -> String {
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

    /// Leaves the cluster's nodes without Berth containers (`scripts/demo` may have left its fleet running).
    public static func removeBerthContainers() throws {
        for n in 1...3 {
            let ids = try docker(n, ["ps", "-aq", "--filter", "label=io.berth.managed-by=berth"]).split(separator: "\n").map(String.init)
            if !ids.isEmpty { try docker(n, ["rm", "-f"] + ids) }
        }
    }

    /// `name port version` of every running Berth container on the active nodes.
    public static func running() throws -> [String] {
        try (1...2).flatMap { n in
            try docker(n, ["ps", "--filter", "label=io.berth.managed-by=berth", "--format", "{{.Names}} {{.Label \"io.berth.host-port\"}} {{.Label \"io.berth.model-version\"}}"])
                .split(separator: "\n").map(String.init)
        }.sorted()
    }

    /// A unique deployment name per test, so tests can share engines.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

/// A placement of the stand-in image on a local node, listening on `port`.
public func standinPlacement(_ deployment: String, node: Int, port: Int, image: String = LocalCluster.imageV1, gpus: [Int] = [0],
                             runtime: NodeSpec.Runtime = .runc, env: [String: String] = [:]) -> ReplicaPlacement {
    let model = ModelVersion(version: "v1", image: image, parameters: ParameterCount(7_000_000_000), precision: .bf16)
    let spec = DeploymentSpec(model: "standin", version: "v1", replicas: 1, gpusPerReplica: gpus.count, env: env)
    let nodeSpec = NodeSpec(address: "127.0.0.1", engine: EngineEndpoint(endpoint: LocalCluster.socket(node)), runtime: runtime,
                            network: .host, gpus: GPUInventory(count: 4, memoryGiB: 80))
    return ReplicaPlacement(deployment: deployment, spec: spec, model: model, replica: 0, node: "node-\(node)", nodeSpec: nodeSpec,
                            gpus: gpus, hostPort: port, revision: 1)
}

/// A port nothing listens on at 127.0.0.1 now, picked by the kernel (bind to port 0), for a
/// process a test starts: a random pick in a fixed range collided now and then with the local
/// cluster's own ports (its TLS proxies listen on 23751–23753).
public func unusedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A free port in the node's host-port range.
public func freePort(node: Int) -> Int {
    PortAllocator.shared.next(node: node)
}

/// Hands out each node's test ports 50–99 of its range in turn, so that tests running at once
/// never pick the same port (random picks collided now and then: nodes share one host network).
public final class PortAllocator: @unchecked Sendable {
    public static let shared = PortAllocator()
    private let lock = NSLock()
    private var used: [Int: Int] = [:]

    public func next(node: Int) -> Int {
        lock.withLock {
            let n = used[node, default: Int.random(in: 0..<50)]
            used[node] = n + 1
            return LocalCluster.portBase + (node - 1) * 100 + 50 + n % 49  // the range's last port is kept for the missing-image test
        }
    }
}
