import BerthModel

/// Free GPUs, used host ports and replicas per deployment on each node, as placement goes on.
struct Ledger {
    struct Node {
        let state: NodeState
        let devices: [GPUDevice]
        var free: Set<Int>
        var ports: Set<Int>
    }

    var nodes: [Node]
    var index: [String: Int] = [:]
    /// Free GPUs and used host ports per node, as plain integers: the placement loop reads them
    /// for every node and replica, and reading a node's sets there cost more than the rest of it.
    var freeCounts: [Int]
    var portsUsed: [Int]
    let portCapacity: [Int]
    /// Node positions by free GPU count, as bitsets (`byFree[f]` has bit i set when node i has f
    /// GPUs free): the best node for a replica is found in the few buckets at or above its size.
    var byFree: [[UInt64]]
    let words: Int
    /// Replicas of each deployment per node (by node position), for spreading.
    var perDeployment: [String: [Int]] = [:]

    init(nodes states: [NodeState]) {
        nodes = states.sorted { $0.name < $1.name }.map { s in
            let devices = s.spec.gpus.resolvedDevices
            return Node(state: s, devices: devices, free: Set(devices.map(\.index)).subtracting(s.outOfService), ports: [])
        }
        for (i, n) in nodes.enumerated() { index[n.state.name] = i }
        freeCounts = nodes.map(\.free.count)
        portsUsed = Array(repeating: 0, count: nodes.count)
        portCapacity = nodes.map(\.state.spec.ports.count)
        words = (nodes.count + 63) / 64
        byFree = Array(repeating: Array(repeating: 0, count: words), count: (freeCounts.max() ?? 0) + 1)
        for (i, f) in freeCounts.enumerated() { byFree[f][i / 64] |= 1 << UInt64(i % 64) }
    }

    /// A previous slice may stay when its node is still eligible (a cordon does not evict, a drain does) and
    /// its GPUs and port are still free in this pass.
    func canKeep(_ slice: Slice, for d: DeploymentRequest) -> Bool {
        guard let i = index[slice.node] else { return false }
        let state = nodes[i].state
        guard state.spec.role == .active, state.ready, !state.draining, d.spec.nodeSelector.isEmpty || Feasibility.selectorProblem(state, d) == nil,
              state.spec.ports.from...state.spec.ports.to ~= slice.hostPort, !nodes[i].ports.contains(slice.hostPort) else { return false }
        // Free GPUs are GPUs of the node; a deployment naming a GPU model needs that model.
        guard slice.gpus.allSatisfy({ nodes[i].free.contains($0) }) else { return false }
        guard let model = d.spec.gpuModel else { return true }
        return slice.gpus.allSatisfy { g in nodes[i].devices.contains { $0.index == g && $0.model == model } }
    }

    mutating func take(_ slice: Slice, deployment: String) {
        guard let i = index[slice.node] else { return }
        nodes[i].free.subtract(slice.gpus)
        nodes[i].ports.insert(slice.hostPort)
        let was = freeCounts[i]
        freeCounts[i] = nodes[i].free.count
        if was != freeCounts[i] {
            byFree[was][i / 64] &= ~(1 << UInt64(i % 64))
            byFree[freeCounts[i]][i / 64] |= 1 << UInt64(i % 64)
        }
        portsUsed[i] = nodes[i].ports.count
        perDeployment[deployment, default: [Int](repeating: 0, count: nodes.count)][i] += 1
    }

    struct Rejected: Error {
        var rejections: [Rejection]
    }

    /// What one deployment may use on each node; it does not change while a pass places replicas,
    /// so it is worked out once per deployment, not once per replica.
    struct View {
        /// Nodes that pass the static checks, with the GPU indices of the right model and memory.
        var eligible: [(node: Int, usable: [Int], allDevices: Bool)]
        var rejections: [Rejection]
        /// Most usable GPUs on one eligible node.
        var largestNode: Int
        var memoryPerGPU: Double
        /// `eligible`'s node positions and whether each may use all its GPUs, apart: the
        /// placement loop reads these without touching the arrays of usable GPUs.
        var positions: [Int] = []
        var usesAll: [Bool] = []
        /// Eligible nodes as a bitset, and each node's position in `eligible` (-1: not eligible).
        var mask: [UInt64] = []
        var positionOf: [Int] = []
        /// Every eligible node may use all its GPUs: the bucket search applies.
        var allUseAll = false
    }

    func view(for d: DeploymentRequest, memoryPerGPU: Double) -> View {
        var rejections: [Rejection] = []
        var eligible: [(node: Int, usable: [Int], allDevices: Bool)] = []
        for (i, n) in nodes.enumerated() {
            if let reason = Feasibility.staticProblem(n.state, d) {
                rejections.append(Rejection(node: n.state.name, reason: reason))
            } else {
                let usable = Feasibility.usableDevices(n, d, memoryPerGPU: memoryPerGPU).map(\.index)
                eligible.append((i, usable, usable.count == n.devices.count))
            }
        }
        var view = View(eligible: eligible, rejections: rejections, largestNode: eligible.map(\.usable.count).max() ?? 0, memoryPerGPU: memoryPerGPU,
                        positions: eligible.map(\.node), usesAll: eligible.map(\.allDevices))
        view.mask = Array(repeating: 0, count: words)
        view.positionOf = Array(repeating: -1, count: nodes.count)
        for (position, e) in eligible.enumerated() {
            view.mask[e.node / 64] |= 1 << UInt64(e.node % 64)
            view.positionOf[e.node] = position
        }
        view.allUseAll = eligible.allSatisfy(\.allDevices)
        return view
    }

    /// Places one replica of `gpus` GPUs, on one node or as a gang.
    mutating func place(_ d: DeploymentRequest, replica: Int, gpus: Int, view: View) -> Result<Assignment, Rejected> {
        if gpus > view.largestNode, gpus > 1, !view.eligible.isEmpty {
            return placeGang(d, replica: replica, gpus: gpus, view: view)
        }
        // The hot loop of a pass: plain integers only (nodes are kept sorted by name, so the
        // position breaks ties as the name would).
        let same = perDeployment[d.name]
        var best: (position: Int, rank: (Int, Int, Int))?
        // The best node holds no replica of this deployment yet and has the fewest free GPUs that
        // suffice, lowest position first: the first such node in the buckets from `gpus` up.
        if view.allUseAll, gpus < byFree.count {
            search: for f in gpus..<byFree.count {
                for w in 0..<words {
                    var bits = byFree[f][w] & view.mask[w]
                    while bits != 0 {
                        let node = w * 64 + bits.trailingZeroBitCount
                        bits &= bits - 1
                        if portsUsed[node] < portCapacity[node], (same?[node] ?? 0) == 0 {
                            best = (view.positionOf[node], (0, f - gpus, node))
                            break search
                        }
                    }
                }
            }
        }
        if best == nil {
            for position in view.positions.indices {
                let node = view.positions[position]
                guard portsUsed[node] < portCapacity[node] else { continue }
                let free = view.usesAll[position] ? freeCounts[node] : freeCount(view.eligible[position])
                guard free >= gpus else { continue }
                let r = (same?[node] ?? 0, free - gpus, node)
                if best == nil || r < best!.rank { best = (position, r) }
            }
        }
        guard let best else {
            return .failure(Rejected(rejections: rejections(view, gpus: gpus, gang: nil)))
        }
        let e = view.eligible[best.position]
        let slice = Slice(node: nodes[e.node].state.name, gpus: pick(e, gpus), hostPort: freePort(e.node)!)
        take(slice, deployment: d.name)
        return .success(Assignment(deployment: d.name, replica: replica, slices: [slice]))
    }

    /// Equal slices on k nodes (the smallest k that divides the GPUs and fits), all or nothing.
    mutating func placeGang(_ d: DeploymentRequest, replica: Int, gpus: Int, view: View) -> Result<Assignment, Rejected> {
        var last: [Rejection] = view.rejections
        for k in 2...max(2, view.eligible.count) where gpus % k == 0 {
            let share = gpus / k
            let candidates = view.eligible.filter { freeCount($0) >= share && hasPort($0.node) }
            guard candidates.count >= k, share <= view.largestNode else {
                last = rejections(view, gpus: share, gang: k)
                continue
            }
            let chosen = candidates.sorted { rank($0.node, d, taking: share) < rank($1.node, d, taking: share) }.prefix(k)
            let slices = chosen.map { Slice(node: nodes[$0.node].state.name, gpus: pick($0, share), hostPort: freePort($0.node)!) }
                .sorted { $0.node < $1.node }
            for s in slices { take(s, deployment: d.name) }
            return .success(Assignment(deployment: d.name, replica: replica, slices: slices))
        }
        return .failure(Rejected(rejections: last))
    }

    /// Why each node refuses `gpus` GPUs now, static reasons included, sorted by node.
    func rejections(_ view: View, gpus: Int, gang: Int?) -> [Rejection] {
        var all = view.rejections
        let suffix = gang.map { " (gang of \($0) × \(gpus))" } ?? ""
        for e in view.eligible {
            let n = nodes[e.node]
            let reason: String
            if gpus > 0, e.usable.isEmpty {
                let biggest = n.devices.compactMap(\.memoryGiB).max() ?? 0
                reason = "has GPUs of \(FleetValidator.fmt(biggest)) GiB"
            } else if freeCount(e) < gpus {
                let out = n.state.outOfService.intersection(e.usable).count
                reason = "has \(freeCount(e)) free" + (out > 0 ? " (\(out) out of service)" : "")
            } else if !hasPort(e.node) {
                reason = "has no free host port in \(n.state.spec.ports.from)–\(n.state.spec.ports.to)"
            } else {
                continue
            }
            all.append(Rejection(node: n.state.name, reason: reason + suffix))
        }
        return all.sorted { $0.node < $1.node }
    }

    func freeCount(_ e: (node: Int, usable: [Int], allDevices: Bool)) -> Int {
        if e.allDevices { return freeCounts[e.node] }
        let free = nodes[e.node].free
        return e.usable.reduce(0) { $0 + (free.contains($1) ? 1 : 0) }
    }

    func hasPort(_ i: Int) -> Bool { portsUsed[i] < portCapacity[i] }

    func freePort(_ i: Int) -> Int? {
        let range = nodes[i].state.spec.ports
        return (range.from...range.to).first { !nodes[i].ports.contains($0) }
    }

    /// The lowest free usable GPU indices.
    func pick(_ e: (node: Int, usable: [Int], allDevices: Bool), _ gpus: Int) -> [Int] {
        Array(e.usable.filter { nodes[e.node].free.contains($0) }.sorted().prefix(gpus))
    }

    /// Lower is better: fewest replicas of this deployment already there (spread), then fewest
    /// GPUs left free after placing (bin-pack), then name.
    func rank(_ i: Int, _ d: DeploymentRequest, taking gpus: Int) -> (Int, Int, Int) {
        (perDeployment[d.name]?[i] ?? 0, nodes[i].free.count - gpus, i)
    }
}

/// The checks a node must pass, each with a constant, readable reason.
enum Feasibility {
    static let standby = "is a standby"
    static let notReady = "not ready"
    static let cordoned = "cordoned"
    static let draining = "draining"

    /// Checks that do not depend on what is already placed.
    static func staticProblem(_ n: NodeState, _ d: DeploymentRequest) -> String? {
        if n.spec.role == .standby { return standby }
        if !n.ready { return notReady }
        if n.draining { return draining }
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
