import BerthModel
import Foundation

/// The desired state of a simulated fleet, drawn from the seed: three or four active nodes and a
/// standby, four GPUs each; one model with four versions; one or two deployments; one gateway
/// routing to them. `apply` changes it the way operators do (a new version, a new replica count).
public struct SimFleet: Sendable {
    public struct Deployment: Sendable {
        public var name: String
        public var version: Int
        public var replicas: Int
        public var gpus: Int
        public var maxSurge: Int
        public var maxUnavailable: Int
    }

    public var nodes: [(name: String, address: String, role: NodeSpec.Role)]
    public var deployments: [Deployment]
    public var revision: Int64 = 1
    public static let versions = 4
    static let gpusPerNode = 4

    public init(rng: inout SimRandom) {
        let actives = rng.chance(0.5) ? 3 : 4
        nodes = (1...actives).map { ("node-\($0)", "10.0.0.\($0)", .active) } + [("node-\(actives + 1)", "10.0.0.\(actives + 1)", .standby)]
        let count = rng.chance(0.6) ? 1 : 2
        deployments = (0..<count).map { i in
            Deployment(name: ["chat", "embed"][i], version: 1, replicas: 2 + Int(rng.next() % 2), gpus: i == 0 ? 1 + Int(rng.next() % 2) : 1,
                       maxSurge: Int(rng.next() % 2), maxUnavailable: Int(rng.next() % 2))
        }
    }

    static func image(_ version: Int) -> String { "registry.sim:5000/llm:v\(version)" }

    /// GPUs the actives hold, less one node's worth: what the deployments may use so that a
    /// failed node's replicas always fit on the promoted standby.
    var budget: Int { (nodes.filter { $0.role == .active }.count - 1) * Self.gpusPerNode }

    /// Rolls one deployment to its next version, or changes its replica count by one.
    public mutating func change(rng: inout SimRandom) -> String {
        let i = Int(rng.next() % UInt64(deployments.count))
        revision += 1
        if rng.chance(0.6) {
            deployments[i].version = deployments[i].version % Self.versions + 1
            return "apply r\(revision): \(deployments[i].name) → v\(deployments[i].version)"
        }
        let used = deployments.reduce(0) { $0 + $1.replicas * $1.gpus }
        let up = used + deployments[i].gpus <= budget && rng.chance(0.5)
        deployments[i].replicas = up ? deployments[i].replicas + 1 : max(1, deployments[i].replicas - 1)
        return "apply r\(revision): \(deployments[i].name) replicas \(deployments[i].replicas)"
    }

    /// The manifests' objects.
    public var resources: [Resource] {
        var objects: [Resource] = nodes.enumerated().map { i, n in
            Resource(metadata: ObjectMeta(name: n.name), spec: .node(NodeSpec(
                address: n.address, engine: EngineEndpoint(endpoint: "tcp://\(n.address):2376"), role: n.role,
                gpus: GPUInventory(count: Self.gpusPerNode, memoryGiB: 80), ports: PortRange(from: 21000, to: 21099))))
        }
        objects.append(Resource(metadata: ObjectMeta(name: "llm"), spec: .model(ModelSpec(versions: (1...Self.versions).map { v in
            ModelVersion(version: "v\(v)", image: Self.image(v), parameters: ParameterCount(7_000_000_000), precision: .bf16)
        }))))
        for d in deployments {
            objects.append(Resource(metadata: ObjectMeta(name: d.name), spec: .deployment(DeploymentSpec(
                model: "llm", version: "v\(d.version)", replicas: d.replicas, gpusPerReplica: d.gpus,
                rollout: RolloutPolicy(maxSurge: .count(d.maxSurge), maxUnavailable: .count(d.maxUnavailable), readyDeadlineSeconds: 90)))))
        }
        objects.append(Resource(metadata: ObjectMeta(name: "front"), spec: .gateway(GatewaySpec(
            listen: 8080, routes: deployments.map { Route(deployment: $0.name, weight: 50) }))))
        return objects
    }

    /// The rule the planner keeps during a rollout: at least this many replicas ready.
    func minReady(_ d: Deployment) -> Int {
        d.replicas - max(d.maxUnavailable, d.maxSurge == 0 ? 1 : 0)
    }
}
