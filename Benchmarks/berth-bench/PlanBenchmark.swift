import BerthDocker
import BerthModel
import BerthReconciler
import BerthScheduler
import Foundation

// Plan computation at fleet scale: 1,000 nodes × 8 GPUs and 8,000 replicas that fill them
// exactly, from empty and again with the first schedule as the previous one (the steady state of
// a reconcile pass). In process.

func planBenchmark(_ options: BenchOptions) {
    let nodes = (0..<1000).map { i in
        NodeState(name: String(format: "gpu-%04d", i),
                  spec: NodeSpec(address: "10.0.\(i / 250).\(i % 250)", engine: EngineEndpoint(endpoint: "tcp://10.0.\(i / 250).\(i % 250):2376"),
                                 gpus: GPUInventory(count: 8, model: "A100-SXM4-80GB", memoryGiB: 80)),
                  labels: ["rack": "r\(i / 40)"])
    }
    let model = ModelVersion(version: "v1", image: "r:5000/m:v1", parameters: ParameterCount(7_000_000_000), precision: .bf16)
    // 8,000 one-GPU replicas: 2,000 deployments of 4.
    var deployments: [DeploymentRequest] = []
    for (count, gpus, prefix) in [(2000, 1, "dep")] {
        for d in 0..<count {
            deployments.append(DeploymentRequest(name: "\(prefix)-\(d)", spec: DeploymentSpec(model: "m", version: "v1", replicas: 4, gpusPerReplica: gpus), model: model))
        }
    }
    let replicas = deployments.reduce(0) { $0 + $1.spec.replicas }
    let gpus = deployments.reduce(0) { $0 + $1.spec.replicas * ($1.spec.gpusPerReplica ?? 0) }
    print("berth-bench plan — 1000 nodes × 8 GPUs, \(deployments.count) deployments, \(replicas) replicas needing \(gpus) GPUs, \(ProcessInfo.processInfo.activeProcessorCount) cores")
    var fresh: [Double] = [], steady: [Double] = []
    var first: Schedule?
    for _ in 0..<max(options.runs, 5) {
        let t0 = DispatchTime.now()
        let s = Scheduler.schedule(nodes: nodes, deployments: deployments)
        let t1 = DispatchTime.now()
        let again = Scheduler.schedule(nodes: nodes, deployments: deployments, previous: s.assignments)
        let t2 = DispatchTime.now()
        fresh.append(Double(t1.uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
        steady.append(Double(t2.uptimeNanoseconds - t1.uptimeNanoseconds) / 1e9)
        precondition(again.assignments == s.assignments, "a steady-state pass must not move replicas")
        first = s
    }
    print("placed \(first!.assignments.count), unplaced \(first!.unplaced.count)")
    report("schedule from empty (8,000 replicas)", fresh, goal: 0.1)
    report("schedule, steady state (all kept)", steady, goal: 0.1)

    // The whole pure plan of a reconcile pass: schedule, container specs and hashes, rollout
    // rules, per-replica status — from empty, and over the running fleet it produced (all ready).
    var resources = nodes.map { Resource(metadata: ObjectMeta(name: $0.name, labels: $0.labels), spec: .node($0.spec)) }
    resources.append(Resource(metadata: ObjectMeta(name: "m"), spec: .model(ModelSpec(versions: [model]))))
    resources += deployments.map { Resource(metadata: ObjectMeta(name: $0.name), spec: .deployment($0.spec)) }
    var planFresh: [Double] = [], planSteady: [Double] = []
    for _ in 0..<max(options.runs, 5) {
        let empty = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, NodeObservation.reachable([])) })
        let t0 = DispatchTime.now()
        let plan = Planner.plan(desired: resources, observed: empty, revision: 1, epoch: 1)
        let t1 = DispatchTime.now()
        var byNode: [String: [ObservedContainer]] = [:]
        for case .create(let node, let c) in plan.actions {
            let l = c.spec.labels
            byNode[node, default: []].append(ObservedContainer(
                node: node, id: c.name, name: c.name, deployment: l[BerthLabel.deployment]!, replica: Int(l[BerthLabel.replica]!)!,
                specHash: c.specHash, templateHash: l[BerthLabel.templateHash]!, running: true,
                gpus: l[BerthLabel.gpus]!.split(separator: ",").compactMap { Int($0) }, hostPort: Int(l[BerthLabel.hostPort]!)!))
        }
        let observed = byNode.mapValues { NodeObservation.reachable($0) }
        let ready = Set(byNode.values.flatMap { $0.map(\.id) })
        let t2 = DispatchTime.now()
        let again = Planner.plan(desired: resources, observed: observed, ready: ready, revision: 1, epoch: 1)
        let t3 = DispatchTime.now()
        precondition(plan.actions.count == 8000 && again.isNoOp, "the second pass over the created fleet must be a no-op")
        planFresh.append(Double(t1.uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
        planSteady.append(Double(t3.uptimeNanoseconds - t2.uptimeNanoseconds) / 1e9)
    }
    report("full plan from empty (8,000 creates)", planFresh, goal: 0.1)
    report("full plan, steady state (no-op)", planSteady, goal: 0.1)
}
