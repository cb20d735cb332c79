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

    public init(deployment: String, spec: DeploymentSpec, model: ModelVersion, replica: Int, node: String, nodeSpec: NodeSpec,
                gpus: [Int], hostPort: Int, revision: Int64) {
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
