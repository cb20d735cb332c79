/// One replica of a deployment placed on a node: which GPUs it holds and which host port serves it.
public struct ReplicaPlacement: Sendable, Hashable {
    public var deployment: String
    public var spec: DeploymentSpec
    public var model: ModelVersion
    /// Replica index within the deployment, from 0.
    public var replica: Int
    public var node: String
    public var nodeSpec: NodeSpec
    /// GPU indices on the node, ascending.
    public var gpus: [Int]
    public var hostPort: Int
    /// The desired-state revision this placement was computed from.
    public var revision: Int64
    /// This container's place in a replica spread over several nodes; nil for a one-node replica.
    public var gang: Gang?

    public init(deployment: String, spec: DeploymentSpec, model: ModelVersion, replica: Int, node: String, nodeSpec: NodeSpec,
                gpus: [Int], hostPort: Int, revision: Int64, gang: Gang? = nil) {
        self.gang = gang
        self.deployment = deployment
        self.spec = spec
        self.model = model
        self.replica = replica
        self.node = node
        self.nodeSpec = nodeSpec
        self.gpus = gpus
        self.hostPort = hostPort
        self.revision = revision
    }
}

/// One member of a replica that spans several nodes (tensor or pipeline parallel across
/// machines): rank 0 leads — it serves requests and answers the health check — and the others
/// join it.
public struct Gang: Sendable, Hashable {
    public var rank: Int
    public var size: Int
    /// Every member's `address:port`, by rank; the first is the leader.
    public var members: [String]

    public init(rank: Int, size: Int, members: [String]) {
        self.rank = rank
        self.size = size
        self.members = members
    }
}
