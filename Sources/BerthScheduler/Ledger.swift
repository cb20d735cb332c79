import BerthModel

/// Free GPUs, used host ports and replicas per deployment on each node, as placement goes on.
struct Ledger {
    struct Node {
        let state: NodeState
        let devices: [GPUDevice]
        var free: Set<Int>
        var ports: Set<Int>
        var perDeployment: [String: Int] = [:]
    }

    var nodes: [Node]
    var index: [String: Int] = [:]

    init(nodes states: [NodeState]) {
        nodes = states.sorted { $0.name < $1.name }.map { s in
            let devices = s.spec.gpus.resolvedDevices
            return Node(state: s, devices: devices, free: Set(devices.map(\.index)), ports: [])
        }
        for (i, n) in nodes.enumerated() { index[n.state.name] = i }
    }

    /// A previous slice may stay when its node is still eligible (a cordon does not evict) and
    /// its GPUs and port are still free in this pass.
    func canKeep(_ slice: Slice, for d: DeploymentRequest) -> Bool {
        guard let i = index[slice.node] else { return false }
        let n = nodes[i]
        guard n.state.spec.role == .active, n.state.ready, Feasibility.selectorProblem(n.state, d) == nil else { return false }
        let usable = Set(Feasibility.usableDevices(n, d, memoryPerGPU: 0).map(\.index))
        return slice.gpus.allSatisfy { n.free.contains($0) && usable.contains($0) }
            && n.state.spec.ports.from...n.state.spec.ports.to ~= slice.hostPort && !n.ports.contains(slice.hostPort)
    }

    mutating func take(_ slice: Slice, deployment: String) {
        guard let i = index[slice.node] else { return }
        nodes[i].free.subtract(slice.gpus)
        nodes[i].ports.insert(slice.hostPort)
        nodes[i].perDeployment[deployment, default: 0] += 1
    }

    struct Rejected: Error {
        var rejections: [Rejection]
    }

    /// Places one replica of `gpus` GPUs with `memoryPerGPU` GiB each, on one node or as a gang.
    mutating func place(_ d: DeploymentRequest, replica: Int, gpus: Int, memoryPerGPU: Double) -> Result<Assignment, Rejected> {
        // Static checks first: they hold whatever the replica's size.
        var rejections: [Rejection] = []
        var eligible: [Int] = []
        for (i, n) in nodes.enumerated() {
            if let reason = Feasibility.staticProblem(n.state, d) {
                rejections.append(Rejection(node: n.state.name, reason: reason))
            } else {
                eligible.append(i)
            }
        }
        let largestNode = eligible.map { Feasibility.usableDevices(nodes[$0], d, memoryPerGPU: memoryPerGPU).count }.max() ?? 0
        if gpus > largestNode, gpus > 1, !eligible.isEmpty {
            return placeGang(d, replica: replica, gpus: gpus, memoryPerGPU: memoryPerGPU, eligible: eligible, rejections: rejections)
        }
        var candidates: [(i: Int, gpus: [Int], port: Int)] = []
        for i in eligible {
            switch fit(i, d, gpus: gpus, memoryPerGPU: memoryPerGPU) {
            case .success(let c): candidates.append((i, c.gpus, c.port))
            case .failure(let reason): rejections.append(Rejection(node: nodes[i].state.name, reason: reason.message))
            }
        }
        guard let best = candidates.min(by: { rank($0.i, d, taking: gpus) < rank($1.i, d, taking: gpus) }) else {
            return .failure(Rejected(rejections: rejections.sorted { $0.node < $1.node }))
        }
        let slice = Slice(node: nodes[best.i].state.name, gpus: best.gpus, hostPort: best.port)
        take(slice, deployment: d.name)
        return .success(Assignment(deployment: d.name, replica: replica, slices: [slice]))
    }

    /// Equal slices on k nodes (the smallest k that divides the GPUs and fits), all or nothing.
    mutating func placeGang(_ d: DeploymentRequest, replica: Int, gpus: Int, memoryPerGPU: Double, eligible: [Int],
                            rejections: [Rejection]) -> Result<Assignment, Rejected> {
        var lastRejections = rejections
        for k in 2...max(2, eligible.count) where gpus % k == 0 {
            let share = gpus / k
            var candidates: [(i: Int, gpus: [Int], port: Int)] = []
            var round = rejections
            for i in eligible {
                switch fit(i, d, gpus: share, memoryPerGPU: memoryPerGPU) {
                case .success(let c): candidates.append((i, c.gpus, c.port))
                case .failure(let reason): round.append(Rejection(node: nodes[i].state.name, reason: reason.message + " (gang of \(k) × \(share))"))
                }
            }
            guard candidates.count >= k else {
                lastRejections = round
                continue
            }
            let chosen = candidates.sorted { rank($0.i, d, taking: share) < rank($1.i, d, taking: share) }.prefix(k)
            let slices = chosen.map { Slice(node: nodes[$0.i].state.name, gpus: $0.gpus, hostPort: $0.port) }.sorted { $0.node < $1.node }
            for s in slices { take(s, deployment: d.name) }
            return .success(Assignment(deployment: d.name, replica: replica, slices: slices))
        }
        return .failure(Rejected(rejections: lastRejections.sorted { $0.node < $1.node }))
    }

    struct Fit {
        var gpus: [Int]
        var port: Int
    }

    struct Misfit: Error {
        var message: String
    }

    /// The lowest free usable GPU indices and the lowest free port on node `i`, or why not.
    func fit(_ i: Int, _ d: DeploymentRequest, gpus: Int, memoryPerGPU: Double) -> Result<Fit, Misfit> {
        let n = nodes[i]
        let usable = Feasibility.usableDevices(n, d, memoryPerGPU: memoryPerGPU)
        if gpus > 0, usable.isEmpty {
            let biggest = Feasibility.modelDevices(n, d).compactMap(\.memoryGiB).max() ?? 0
            return .failure(Misfit(message: "has GPUs of \(FleetValidator.fmt(biggest)) GiB"))
        }
        let free = usable.map(\.index).filter { n.free.contains($0) }.sorted()
        if free.count < gpus {
            return .failure(Misfit(message: "has \(free.count) free"))
        }
        let range = n.state.spec.ports
        guard let port = (range.from...range.to).first(where: { !n.ports.contains($0) }) else {
            return .failure(Misfit(message: "has no free host port in \(range.from)–\(range.to)"))
        }
        return .success(Fit(gpus: Array(free.prefix(gpus)), port: port))
    }

    /// Lower is better: fewest replicas of this deployment already there (spread), then fewest
    /// GPUs left free after placing (bin-pack), then name.
    func rank(_ i: Int, _ d: DeploymentRequest, taking gpus: Int) -> Rank {
        let n = nodes[i]
        return Rank(sameDeployment: n.perDeployment[d.name] ?? 0, freeAfter: n.free.count - gpus, name: n.state.name)
    }

    struct Rank: Comparable {
        var sameDeployment: Int
        var freeAfter: Int
        var name: String

        static func < (a: Rank, b: Rank) -> Bool {
            (a.sameDeployment, a.freeAfter, a.name) < (b.sameDeployment, b.freeAfter, b.name)
        }
    }
}

/// The checks a node must pass, each with a constant, readable reason.
enum Feasibility {
    static let standby = "is a standby"
    static let notReady = "not ready"
    static let cordoned = "cordoned"

    /// Checks that do not depend on what is already placed.
    static func staticProblem(_ n: NodeState, _ d: DeploymentRequest) -> String? {
        if n.spec.role == .standby { return standby }
        if !n.ready { return notReady }
        if n.cordoned { return cordoned }
        if let problem = selectorProblem(n, d) { return problem }
        if let model = d.spec.gpuModel, (d.spec.gpusPerReplica ?? 1) > 0,
           !n.spec.gpus.resolvedDevices.contains(where: { $0.model == model }) {
            return "has no \(model) GPUs"
        }
        return nil
    }

    static func selectorProblem(_ n: NodeState, _ d: DeploymentRequest) -> String? {
        for (k, v) in d.spec.nodeSelector.sorted(by: { $0.key < $1.key }) where n.labels[k] != v {
            return "lacks label \(k)=\(v)"
        }
        return nil
    }

    /// The node's GPUs of the deployment's GPU model (all, when it names none).
    static func modelDevices(_ n: Ledger.Node, _ d: DeploymentRequest) -> [GPUDevice] {
        n.devices.filter { d.spec.gpuModel == nil || $0.model == d.spec.gpuModel }
    }

    /// GPUs of the right model with at least `memoryPerGPU` GiB.
    static func usableDevices(_ n: Ledger.Node, _ d: DeploymentRequest, memoryPerGPU: Double) -> [GPUDevice] {
        modelDevices(n, d).filter { ($0.memoryGiB ?? 0) + 1e-9 >= memoryPerGPU }
    }
}
