import BerthModel

/// Places every deployment's replicas on nodes' GPUs. Pure: the same fleet, deployments and
/// previous assignments give the same schedule.
///
/// - Stability: a previous assignment is kept while its node stays eligible and the replica still
///   needs the same GPUs; only new or displaced replicas are placed.
/// - Feasibility is a chain of small checks per node (`Feasibility`), each with a constant reason.
/// - Ranking spreads replicas of one deployment across nodes, then bin-packs (the node left with
///   the fewest free GPUs wins), so whole nodes stay free for large replicas.
/// - A replica needing more GPUs than any node has is a gang: equal slices on several nodes.
public enum Scheduler {
    /// `reserved`: GPUs and ports held by containers that stay without a slot (ready replicas
    /// past a deployment's count that serve until it has its count ready): nothing is placed there.
    public static func schedule(nodes: [NodeState], deployments: [DeploymentRequest], previous: [Assignment] = [],
                                reserved: [Slice] = []) -> Schedule {
        var ledger = Ledger(nodes: nodes)
        let byName = Dictionary(uniqueKeysWithValues: deployments.map { ($0.name, $0) })
        let capacity = GPUCapacity(nodes.map(\.spec))
        var gpusPerReplica: [String: Int] = [:]
        var unsizable: [String: String] = [:]
        for d in deployments {
            switch size(d, capacity: capacity) {
            case .success(let n): gpusPerReplica[d.name] = n
            case .failure(let reason): unsizable[d.name] = reason.message
            }
        }

        // 1. Keep what still fits, in a fixed order so the ledger fills deterministically.
        var assignments: [Assignment] = []
        var kept = Set<ReplicaKey>()
        for a in previous.sorted(by: { ($0.deployment, $0.replica) < ($1.deployment, $1.replica) }) {
            guard let d = byName[a.deployment], a.replica < d.spec.replicas, let gpus = gpusPerReplica[a.deployment],
                  a.gpuCount == gpus, !kept.contains(ReplicaKey(a.deployment, a.replica)),
                  a.slices.allSatisfy({ ledger.canKeep($0, for: d) })
            else { continue }
            for slice in a.slices { ledger.take(slice, deployment: a.deployment) }
            assignments.append(a)
            kept.insert(ReplicaKey(a.deployment, a.replica))
        }

        for slice in reserved { ledger.take(slice, deployment: "") }

        // 2. Place the rest: largest replicas first, then by name and index.
        var pending: [(DeploymentRequest, Int)] = []
        for d in deployments {
            for r in 0..<d.spec.replicas where !kept.contains(ReplicaKey(d.name, r)) { pending.append((d, r)) }
        }
        pending.sort { a, b in
            let (ga, gb) = (gpusPerReplica[a.0.name] ?? 0, gpusPerReplica[b.0.name] ?? 0)
            return (-ga, a.0.name, a.1) < (-gb, b.0.name, b.1)
        }
        var unplaced: [Unplaced] = []
        var views: [Shape: Ledger.View] = [:]
        var refused: [String: [Rejection]] = [:]
        for (d, replica) in pending {
            guard let gpus = gpusPerReplica[d.name] else {
                unplaced.append(Unplaced(deployment: d.name, replica: replica, needs: unsizable[d.name] ?? "a size", rejections: []))
                continue
            }
            // A fixed GPU count is checked against the weights alone; a derived one includes the headroom.
            let need = d.spec.gpusPerReplica == nil ? GPUMath.requiredMemoryGiB(d.model) : GPUMath.minimumMemoryGiB(d.model)
            let perGPU = gpus == 0 ? 0 : need / Double(gpus)
            // Replicas of one deployment come one after another, and the ledger only fills up:
            // once one does not fit, the next ones do not either, for the same reasons.
            if let failed = refused[d.name] {
                unplaced.append(Unplaced(deployment: d.name, replica: replica, needs: needs(gpus, perGPU, d), rejections: failed))
                continue
            }
            // Deployments with the same constraints see the same nodes: work that out once.
            let shape = Shape(gpuModel: d.spec.gpuModel, selector: d.spec.nodeSelector, memoryPerGPU: perGPU, usesGPUs: (d.spec.gpusPerReplica ?? 1) > 0)
            let view = views[shape] ?? ledger.view(for: d, memoryPerGPU: perGPU)
            views[shape] = view
            switch ledger.place(d, replica: replica, gpus: gpus, view: view) {
            case .success(let a): assignments.append(a)
            case .failure(let rejected):
                refused[d.name] = rejected.rejections
                unplaced.append(Unplaced(deployment: d.name, replica: replica, needs: needs(gpus, perGPU, d), rejections: rejected.rejections))
            }
        }
        assignments.sort { ($0.deployment, $0.replica) < ($1.deployment, $1.replica) }
        unplaced.sort { ($0.deployment, $0.replica) < ($1.deployment, $1.replica) }
        return Schedule(assignments: assignments, unplaced: unplaced, gpusPerReplica: gpusPerReplica)
    }

    struct SizeError: Error { var message: String }

    /// GPUs one replica spans: explicit, or derived from the model's size over the largest GPUs it may use.
    static func size(_ d: DeploymentRequest, capacity: GPUCapacity) -> Result<Int, SizeError> {
        if let explicit = d.spec.gpusPerReplica { return .success(explicit) }
        let usable = capacity.tally(model: d.spec.gpuModel)
        let largest = usable.largestGiB
        guard usable.count > 0 else {
            return .failure(SizeError(message: "GPUs\(d.spec.gpuModel.map { " of model \($0)" } ?? ""), and the fleet has none"))
        }
        let need = GPUMath.requiredMemoryGiB(d.model)
        guard let n = GPUMath.gpusNeeded(requiredGiB: need, memoryPerGPU: largest) else {
            return .failure(SizeError(message: "\(FleetValidator.fmt(need)) GiB, more than 16 GPUs of \(FleetValidator.fmt(largest)) GiB hold"))
        }
        return .success(n)
    }

    static func needs(_ gpus: Int, _ perGPU: Double, _ d: DeploymentRequest) -> String {
        var text = "\(gpus) GPU\(gpus == 1 ? "" : "s") ≥ \(FleetValidator.fmt((perGPU * 10).rounded(.up) / 10)) GiB"
        if let model = d.spec.gpuModel { text += " of model \(model)" }
        return text
    }
}

/// Everything the static node checks and usable-GPU lists depend on.
struct Shape: Hashable {
    var gpuModel: String?
    var selector: [String: String]
    var memoryPerGPU: Double
    var usesGPUs: Bool
}

struct ReplicaKey: Hashable {
    var deployment: String
    var replica: Int
    init(_ deployment: String, _ replica: Int) {
        self.deployment = deployment
        self.replica = replica
    }
}
