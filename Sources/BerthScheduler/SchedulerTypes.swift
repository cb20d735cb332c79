import BerthModel

/// What the scheduler knows about a node beyond its manifest: observed health and operator holds.
public struct NodeState: Sendable, Hashable {
    public var name: String
    public var spec: NodeSpec
    public var labels: [String: String]
    /// The engine answers and the node is not declared failed.
    public var ready: Bool
    /// An operator hold: no new replicas (running ones stay).
    public var cordoned: Bool
    /// An operator hold: no replicas at all; running ones are placed elsewhere.
    public var draining: Bool
    /// GPU indices out of service: nothing is placed on them, and a replica holding one is placed
    /// elsewhere (on the node's other GPUs too).
    public var outOfService: Set<Int> = []

    public init(name: String, spec: NodeSpec, labels: [String: String] = [:], ready: Bool = true, cordoned: Bool = false, draining: Bool = false) {
        self.name = name
        self.spec = spec
        self.labels = labels
        self.ready = ready
        self.cordoned = cordoned
        self.draining = draining
    }
}

/// A deployment to place, with the model version it serves.
public struct DeploymentRequest: Sendable, Hashable {
    public var name: String
    public var spec: DeploymentSpec
    public var model: ModelVersion

    public init(name: String, spec: DeploymentSpec, model: ModelVersion) {
        self.name = name
        self.spec = spec
        self.model = model
    }
}

/// The part of a replica on one node: GPUs there and the host port it serves on.
public struct Slice: Sendable, Hashable, Codable {
    public var node: String
    public var gpus: [Int]
    public var hostPort: Int

    public init(node: String, gpus: [Int], hostPort: Int) {
        self.node = node
        self.gpus = gpus
        self.hostPort = hostPort
    }
}

/// One placed replica. Usually one slice; a replica larger than any node is a gang of slices on
/// several nodes, placed all or nothing.
public struct Assignment: Sendable, Hashable, Codable {
    public var deployment: String
    public var replica: Int
    public var slices: [Slice]

    public init(deployment: String, replica: Int, slices: [Slice]) {
        self.deployment = deployment
        self.replica = replica
        self.slices = slices
    }

    public var gpuCount: Int { slices.reduce(0) { $0 + $1.gpus.count } }
    public var isGang: Bool { slices.count > 1 }
}

/// A replica that could not be placed, and why, node by node.
public struct Unplaced: Sendable, Hashable {
    public var deployment: String
    public var replica: Int
    /// What one replica needs, e.g. `8 GPUs ≥ 80 GiB`.
    public var needs: String
    /// Each node that was considered, with the constant reason it was rejected.
    public var rejections: [Rejection]

    /// "needs 8 GPUs ≥ 80 GiB: gpu-a1 has 3 free; gpu-a2 not ready".
    public var reason: String {
        "needs \(needs): " + (rejections.isEmpty ? "no nodes" : rejections.map { "\($0.node) \($0.reason)" }.joined(separator: "; "))
    }
}

/// One node's reason for turning a replica away.
public struct Rejection: Sendable, Hashable {
    public var node: String
    public var reason: String
}

/// The scheduler's answer for a whole fleet.
public struct Schedule: Sendable, Hashable {
    public var assignments: [Assignment]
    public var unplaced: [Unplaced]
    /// GPUs per replica of each deployment, explicit or derived.
    public var gpusPerReplica: [String: Int]
}
