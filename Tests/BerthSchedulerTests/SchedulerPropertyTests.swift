import BerthModel
import BerthScheduler
import BerthTesting
import Testing


@Suite("Scheduler safety properties")
struct SchedulerPropertyTests {
    /// Random fleets and deployments, scheduled twice (the second time after random failures and
    /// cordons and drains, with the first schedule as the previous one); every schedule must keep the rules.
    @Test(arguments: 0..<200)
    func schedules_neverBreakTheSafetyRules(seed: Int) {
        var rng = SeededGenerator(state: UInt64(seed))
        var nodes = (0..<Int.random(in: 1...10, using: &rng)).map { i in
            node("n\(i)", gpus: [1, 2, 4, 8].randomElement(using: &rng)!, memory: [24, 48, 80].randomElement(using: &rng)!,
                 role: Int.random(in: 0..<5, using: &rng) == 0 ? .standby : .active, ready: Int.random(in: 0..<6, using: &rng) != 0,
                 cordoned: Int.random(in: 0..<8, using: &rng) == 0, ports: 20000...(20000 + Int.random(in: 0...6, using: &rng)))
        }
        let deployments = (0..<Int.random(in: 1...8, using: &rng)).map { i in
            deployment("d\(i)", replicas: Int.random(in: 0...5, using: &rng),
                       gpus: [nil, 0, 1, 1, 2, 4, 8, 16].randomElement(using: &rng)!,
                       parameters: ["1.5B", "7B", "32B", "70B"].randomElement(using: &rng)!)
        }
        let first = Scheduler.schedule(nodes: nodes, deployments: deployments)
        check(first, nodes: nodes, deployments: deployments, previous: [], seed: seed)
        for i in nodes.indices {
            if Int.random(in: 0..<4, using: &rng) == 0 { nodes[i].ready.toggle() }
            if Int.random(in: 0..<6, using: &rng) == 0 { nodes[i].cordoned.toggle() }
            if Int.random(in: 0..<8, using: &rng) == 0 { nodes[i].draining = true }
        }
        let second = Scheduler.schedule(nodes: nodes, deployments: deployments, previous: first.assignments)
        check(second, nodes: nodes, deployments: deployments, previous: first.assignments, seed: seed)
        #expect(Scheduler.schedule(nodes: nodes, deployments: deployments, previous: first.assignments) == second, "deterministic")
    }

    func check(_ s: Schedule, nodes: [NodeState], deployments: [DeploymentRequest], previous: [Assignment], seed: Int) {
        let byName = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0) })
        let previousSlices = Set(previous.flatMap { a in a.slices.map { "\(a.deployment)/\(a.replica)@\($0.node)" } })
        var usedGPUs: [String: Set<Int>] = [:]
        var usedPorts: [String: Set<Int>] = [:]
        var replicas = Set<String>()
        for a in s.assignments {
            #expect(replicas.insert("\(a.deployment)/\(a.replica)").inserted, "seed \(seed): replica placed twice")
            let d = deployments.first { $0.name == a.deployment }!
            #expect(a.replica < d.spec.replicas, "seed \(seed): replica beyond the desired count")
            #expect(a.gpuCount == s.gpusPerReplica[a.deployment], "seed \(seed): wrong GPU count")
            #expect(Set(a.slices.map(\.node)).count == a.slices.count, "seed \(seed): a gang with two slices on one node")
            for slice in a.slices {
                let n = byName[slice.node]!
                #expect(n.spec.role == .active && n.ready, "seed \(seed): replica on a standby or not-ready node \(n.name)")
                #expect(!n.draining, "seed \(seed): replica on draining \(n.name)")
                if n.cordoned {
                    #expect(previousSlices.contains("\(a.deployment)/\(a.replica)@\(n.name)"), "seed \(seed): new replica on cordoned \(n.name)")
                }
                for g in slice.gpus {
                    #expect(n.spec.gpus.resolvedDevices.contains { $0.index == g }, "seed \(seed): GPU \(g) does not exist on \(n.name)")
                    #expect(usedGPUs[n.name, default: []].insert(g).inserted, "seed \(seed): GPU \(g) of \(n.name) given twice")
                }
                #expect((n.spec.ports.from...n.spec.ports.to).contains(slice.hostPort), "seed \(seed): port outside the range")
                #expect(usedPorts[n.name, default: []].insert(slice.hostPort).inserted, "seed \(seed): port given twice")
            }
        }
        for (name, gpus) in usedGPUs {
            #expect(gpus.count <= byName[name]!.spec.gpus.count, "seed \(seed): more GPUs used than \(name) has")
        }
        // Every desired replica is either placed or explained.
        for d in deployments {
            let placed = s.assignments.filter { $0.deployment == d.name }.count
            let unplaced = s.unplaced.filter { $0.deployment == d.name }.count
            #expect(placed + unplaced == d.spec.replicas, "seed \(seed): \(d.name) has replicas neither placed nor explained")
        }
    }
}
