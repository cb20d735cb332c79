import BerthModel
import BerthReconciler
import BerthRuntime
import Foundation

/// A small fleet for planner tests: nodes `a`, `b`… with `gpusPerNode` GPUs each, model `m` with
/// versions v1 and v2, deployment `chat`.
public func fleet(replicas: Int = 2, version: String = "v1", nodes: [String] = ["a", "b"], gpusPerNode: Int = 2,
           maxSurge: Int = 0, maxUnavailable: Int = 0, deadline: Int = 600) -> [Resource] {
    var objects: [Resource] = nodes.enumerated().map { i, n in
        Resource(metadata: ObjectMeta(name: n), spec: .node(NodeSpec(
            address: "127.0.0.1", engine: EngineEndpoint(endpoint: "unix:///run/\(n).sock"), network: .host,
            gpus: GPUInventory(count: gpusPerNode, memoryGiB: 80), ports: PortRange(from: 21000 + 100 * i, to: 21099 + 100 * i))))
    }
    objects.append(Resource(metadata: ObjectMeta(name: "m"), spec: .model(ModelSpec(versions: [
        ModelVersion(version: "v1", image: "r:5000/m:v1", parameters: ParameterCount(1_500_000_000), precision: .bf16),
        ModelVersion(version: "v2", image: "r:5000/m:v2", parameters: ParameterCount(1_500_000_000), precision: .bf16),
    ]))))
    objects.append(Resource(metadata: ObjectMeta(name: "chat"), spec: .deployment(DeploymentSpec(
        model: "m", version: version, replicas: replicas, gpusPerReplica: 1,
        rollout: RolloutPolicy(maxSurge: .count(maxSurge), maxUnavailable: .count(maxUnavailable), readyDeadlineSeconds: deadline)))))
    return objects
}

/// The nodes as a plan's executor would leave them: created containers run (not ready until
/// `markAllReady`), removed ones are gone, started ones run.
public struct Cluster {
    public var containers: [String: [ObservedContainer]]
    public var ready: Set<String> = []
    public var now = Date(timeIntervalSince1970: 1_000_000)

    public init(nodes: [String] = ["a", "b"]) {
        containers = Dictionary(uniqueKeysWithValues: nodes.map { ($0, []) })
    }

    public var observed: [String: NodeObservation] { containers.mapValues { .reachable($0) } }
    public var all: [ObservedContainer] { containers.values.flatMap { $0 } }
    public var readyCount: Int { all.filter { ready.contains($0.id) && $0.running }.count }

    public func plan(_ desired: [Resource], revision: Int64 = 1, health: FleetHealth = FleetHealth()) -> Plan {
        Planner.plan(desired: desired, observed: observed, ready: ready, revision: revision, epoch: 1, now: now, health: health)
    }

    public mutating func run(_ plan: Plan, running: Bool = true) {
        for action in plan.actions {
            switch action {
            case .create(let node, let c):
                let l = c.spec.labels
                var o = ObservedContainer(
                    node: node, id: "id-\(c.name)", name: c.name, deployment: l[BerthLabel.deployment]!, replica: Int(l[BerthLabel.replica]!)!,
                    specHash: c.specHash, templateHash: l[BerthLabel.templateHash]!, running: running,
                    gpus: l[BerthLabel.gpus]!.split(separator: ",").compactMap { Int($0) }, hostPort: Int(l[BerthLabel.hostPort]!)!,
                    modelVersion: l[BerthLabel.modelVersion]!, created: now)
                o.rank = l[BerthLabel.gangRank].flatMap { Int($0) } ?? 0
                o.gangSize = l[BerthLabel.gangSize].flatMap { Int($0) } ?? 1
                containers[node, default: []].append(o)
            case .start(let node, let id, _):
                containers[node] = containers[node]!.map { c in
                    var c = c
                    if c.id == id { c.running = true; c.state = "running" }
                    return c
                }
            case .remove(let node, let id, _, _):
                containers[node]!.removeAll { $0.id == id }
                ready.remove(id)
            }
        }
    }

    public mutating func markAllReady() { for c in all where c.running { ready.insert(c.id) } }
}

extension Action {
    public var isCreate: Bool { if case .create = self { true } else { false } }
    public var isRemove: Bool { if case .remove = self { true } else { false } }
    public var isStart: Bool { if case .start = self { true } else { false } }
}
