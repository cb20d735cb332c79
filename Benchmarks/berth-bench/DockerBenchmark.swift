import BerthDocker
import BerthModel
import Foundation

// Create and start N containers of the stand-in image spread over the local cluster's nodes:
// through Berth's client (all at once, as the executor does), and with the docker CLI serially
// and 8 at a time, in the same run. Needs `scripts/local-cluster up --nodes 4`.

let clusterRun = ProcessInfo.processInfo.environment["BERTH_CLUSTER_RUN"] ?? "/run/berth-local"
let registry = "127.0.0.1:\(ProcessInfo.processInfo.environment["BERTH_REGISTRY_PORT"] ?? "5000")"
let standinImage = "\(registry)/berth/standin:v1"

func socket(_ node: Int) -> String { "unix://\(clusterRun)/node-\(node)/docker.sock" }

/// Node and host port of container `i`.
func slot(_ i: Int, nodes: Int) -> (node: Int, port: Int) {
    let node = i % nodes + 1
    return (node, 21000 + (node - 1) * 100 + 60 + i / nodes)
}

func removeBenchContainers(_ clients: [DockerClient]) async throws {
    for client in clients {
        for c in try await client.listContainers(labels: ["io.berth.bench=1"]) {
            try await client.removeContainer(c.id)
        }
    }
}

func berthRun(_ clients: [DockerClient], count: Int, round: Int) async throws -> Double {
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for i in 0..<count {
            let (node, port) = slot(i, nodes: clients.count)
            let model = ModelVersion(version: "v1", image: standinImage, parameters: ParameterCount(1_500_000_000), precision: .bf16)
            let spec = DeploymentSpec(model: "standin", version: "v1", replicas: count, gpusPerReplica: 0)
            let nodeSpec = NodeSpec(address: "127.0.0.1", engine: EngineEndpoint(endpoint: socket(node)), network: .host,
                                    gpus: GPUInventory(count: 0, memoryGiB: 0))
            var planned = ContainerSpecBuilder.build(
                ReplicaPlacement(deployment: "bench\(round)", spec: spec, model: model, replica: i, node: "node-\(node)",
                                 nodeSpec: nodeSpec, gpus: [], hostPort: port, revision: 1), epoch: 1)
            planned.spec.labels["io.berth.bench"] = "1"
            let client = clients[node - 1]
            group.addTask {
                let (id, _) = try await client.ensureContainer(planned)
                try await client.startContainer(id)
            }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func cliRun(count: Int, nodes: Int, parallel: Int, round: Int) throws -> Double {
    // One shell line per container, run by xargs with the given parallelism.
    let lines = (0..<count).map { i -> String in
        let (node, port) = slot(i, nodes: nodes)
        return "/usr/bin/docker -H \(socket(node)) run -d --name cli\(round)-\(i) --label io.berth.bench=1 --network host -e BERTH_PORT=\(port) \(standinImage)"
    }.joined(separator: "\n")
    let script = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-cli-\(getpid()).txt").path
    try lines.write(toFile: script, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: script) }
    return runTimed("/bin/sh", ["-c", "xargs -P \(parallel) -I{} sh -c '{} >/dev/null' < \(script)"])
}

func dockerBenchmark(_ options: BenchOptions) async throws {
    var clients: [DockerClient] = []
    for n in 1...options.nodes {
        let client = try await DockerClient.connect(DockerEndpoint(socket(n)))
        try await client.pullImage(standinImage)
        clients.append(client)
    }
    print("berth-bench docker — \(options.containers) containers over \(options.nodes) nodes, \(options.runs) runs each, \(ProcessInfo.processInfo.activeProcessorCount) cores, engine \(clients[0].engineVersion)")
    try await removeBenchContainers(clients)
    var berth: [Double] = [], serial: [Double] = [], parallel: [Double] = []
    for round in 0..<options.runs {
        // Interleaved, so drift on a noisy machine hits all three alike.
        berth.append(try await berthRun(clients, count: options.containers, round: round))
        try await removeBenchContainers(clients)
        serial.append(try cliRun(count: options.containers, nodes: options.nodes, parallel: 1, round: round))
        try await removeBenchContainers(clients)
        parallel.append(try cliRun(count: options.containers, nodes: options.nodes, parallel: 8, round: round))
        try await removeBenchContainers(clients)
    }
    func line(_ name: String, _ xs: [Double]) {
        print(name.padding(36) + String(format: " median %7.2f s  (min %.2f, max %.2f)", median(xs), xs.min()!, xs.max()!))
    }
    line("berth client (concurrent)", berth)
    line("docker CLI, serial", serial)
    line("docker CLI, 8 in parallel", parallel)
    print(String(format: "ratio: CLI serial / berth = %.2f×, CLI 8-parallel / berth = %.2f× (goal: ≥ 1.0× against the parallel CLI: %@)",
                 median(serial) / median(berth), median(parallel) / median(berth),
                 (median(parallel) >= median(berth) ? "meets" : "MISSES") as NSString))
}
