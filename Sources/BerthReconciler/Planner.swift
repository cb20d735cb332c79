import BerthDocker
import BerthModel
import BerthScheduler

/// One step the executor takes on a node.
public enum Action: Sendable, Hashable, CustomStringConvertible {
    /// Create and start a replica's container.
    case create(node: String, container: PlannedContainer)
    /// Start a replica's stopped container.
    case start(node: String, id: String, name: String)
    /// Remove a container Berth no longer wants (killing it if it runs).
    case remove(node: String, id: String, name: String, reason: String)

    public var node: String {
        switch self {
        case .create(let n, _), .start(let n, _, _), .remove(let n, _, _, _): n
        }
    }

    public var description: String {
        switch self {
        case .create(let n, let c): "create \(c.name) on \(n)"
        case .start(let n, _, let name): "start \(name) on \(n)"
        case .remove(let n, _, let name, let reason): "remove \(name) on \(n) (\(reason))"
        }
    }
}

/// A pass's plan: what to do, what is fine as it is, and what cannot be placed.
public struct Plan: Sendable {
    public var actions: [Action]
    /// Containers that match the desired state and run.
    public var kept: [ObservedContainer]
    public var schedule: Schedule

    /// Nothing to do this pass.
    public var isNoOp: Bool { actions.isEmpty }
}

/// Computes a pass's plan from the desired state and what the nodes report. Pure.
///
/// Level-triggered: nothing is remembered between passes. Running containers are the previous
/// assignments the scheduler keeps stable; a replica whose container carries another spec hash is
/// replaced — at most `max(1, maxUnavailable)` of a deployment per pass, and only while the rest of
/// it runs — by removing the old container before creating the new one (with host networking the
/// two would want the same port and GPUs). Berth containers nobody wants are removed; containers
/// without Berth's labels never appear here at all.
public enum Planner {
    public static func plan(desired: [Resource], observed: [String: NodeObservation], revision: Int64, epoch: Int64) -> Plan {
        let input = FleetInput(desired) { name in if case .reachable = observed[name] { true } else { false } }
        let nodeStates = Dictionary(uniqueKeysWithValues: input.nodes.map { ($0.name, $0) })
        // Running containers, one per replica, are what the scheduler should keep in place.
        var previous: [Assignment] = []
        var seen = Set<String>()
        for c in observed.values.flatMap(\.containers).sorted(by: { ($0.running ? 0 : 1, $0.node, $0.name) < ($1.running ? 0 : 1, $1.node, $1.name) }) {
            let key = "\(c.deployment)/\(c.replica)"
            guard seen.insert(key).inserted else { continue }
            previous.append(Assignment(deployment: c.deployment, replica: c.replica, slices: [Slice(node: c.node, gpus: c.gpus, hostPort: c.hostPort)]))
        }
        let schedule = input.schedule(previous: previous)

        var actions: [Action] = []
        var kept: [ObservedContainer] = []
        var wanted = Set<String>()  // container names (per node) the plan keeps or creates
        let byDeployment = Dictionary(grouping: schedule.assignments, by: \.deployment)
        for request in input.deployments {
            let assignments = byDeployment[request.name] ?? []
            let budget = max(1, request.spec.rollout.maxUnavailable.resolve(total: request.spec.replicas, roundUp: false))
            var replacing = 0
            // Replicas of this deployment serving now, in any version.
            var available = 0
            var work: [(Assignment, [PlannedContainer], [ObservedContainer])] = []
            for a in assignments where a.slices.count == 1 {
                let slice = a.slices[0]
                let node = nodeStates[slice.node]!
                let placement = ReplicaPlacement(deployment: request.name, spec: request.spec, model: request.model, replica: a.replica,
                                                 node: slice.node, nodeSpec: node.spec, gpus: slice.gpus, hostPort: slice.hostPort, revision: revision)
                let planned = ContainerSpecBuilder.build(placement, epoch: epoch)
                let mine = observed[slice.node]?.containers.filter { $0.deployment == request.name && $0.replica == a.replica } ?? []
                if mine.contains(where: { $0.running }) { available += 1 }
                work.append((a, [planned], mine))
            }
            for (a, planned, mine) in work {
                let target = planned[0]
                let node = a.slices[0].node
                if let current = mine.first(where: { $0.name == target.name }) {
                    wanted.insert("\(node)/\(current.name)")
                    if current.running { kept.append(current) } else { actions.append(.start(node: node, id: current.id, name: current.name)) }
                    continue
                }
                let outdated = mine.filter { $0.name != target.name }
                if !outdated.isEmpty {
                    // A replacement: within the rollout budget, and only while enough of the rest serve.
                    guard replacing < budget, available - (replacing + 1) >= request.spec.replicas - budget else {
                        for o in outdated { wanted.insert("\(node)/\(o.name)") }
                        continue
                    }
                    replacing += 1
                    for o in outdated {
                        actions.append(.remove(node: node, id: o.id, name: o.name, reason: "replaced by \(target.name)"))
                        wanted.insert("\(node)/\(o.name)")  // handled above; not an orphan
                    }
                }
                actions.append(.create(node: node, container: target))
                wanted.insert("\(node)/\(target.name)")
            }
        }
        for (node, observation) in observed.sorted(by: { $0.key < $1.key }) {
            for c in observation.containers where !wanted.contains("\(node)/\(c.name)") {
                let reason = input.deployments.contains { $0.name == c.deployment } ? "not desired on this node" : "deployment \(c.deployment) is gone"
                actions.insert(.remove(node: node, id: c.id, name: c.name, reason: reason), at: 0)
            }
        }
        return Plan(actions: actions, kept: kept, schedule: schedule)
    }
}
