import BerthModel

/// The scheduler's inputs read from a desired state: every node (ready as `ready` says) and every
/// deployment whose model version exists.
public struct FleetInput: Sendable {
    public var nodes: [NodeState]
    public var deployments: [DeploymentRequest]

    public init(_ objects: [Resource], ready: (String) -> Bool = { _ in true }) {
        nodes = objects.compactMap { r in
            r.node.map { NodeState(name: r.name, spec: $0, labels: r.metadata.labels, ready: ready(r.name)) }
        }
        let models = Dictionary(uniqueKeysWithValues: objects.compactMap { r in r.model.map { (r.name, $0) } })
        deployments = objects.compactMap { r in
            guard let d = r.deployment, let version = models[d.model]?.version(d.version) else { return nil }
            return DeploymentRequest(name: r.name, spec: d, model: version)
        }
    }

    /// The schedule from scratch (no previous assignments).
    public func schedule(previous: [Assignment] = [], reserved: [Slice] = []) -> Schedule {
        Scheduler.schedule(nodes: nodes, deployments: deployments, previous: previous, reserved: reserved)
    }
}
