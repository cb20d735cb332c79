import BerthModel
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
    report("plan from empty (8,000 replicas)", fresh, goal: 0.1)
    report("plan, steady state (all kept)", steady, goal: 0.1)
}
