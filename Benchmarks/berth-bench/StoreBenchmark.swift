import BerthModel
import BerthStore
import Foundation

// Benchmarks of the state store through the real `berth` binary: a fleet of 1,000 nodes,
// 200 models and 2,000 deployments; the first apply into an empty state, a no-op re-apply,
// `berth get deployments`, and `berth history` over 10,000 stored revisions. Medians of N runs,
// each a fresh process.

func storeBenchmark(_ options: BenchOptions) throws {
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-\(getpid())").path
    try FileManager.default.createDirectory(atPath: work + "/fleet", withIntermediateDirectories: true)
    defer {
        if options.keep { print("kept \(work)") } else { try? FileManager.default.removeItem(atPath: work) }
    }

    print("berth-bench store — \(options.berth), timed by hyperfine (wall time, medians), \(ProcessInfo.processInfo.activeProcessorCount) cores")
    try generateFleet(into: work + "/fleet")
    let sizes = try ["nodes.yaml", "models.yaml", "deployments.yaml"].map {
        (try FileManager.default.attributesOfItem(atPath: work + "/fleet/" + $0)[.size] as? NSNumber)?.intValue ?? 0
    }.reduce(0, +)
    print(String(format: "fleet: 1000 nodes, 200 models × 3 versions, 2000 deployments (%.1f MiB of YAML)", Double(sizes) / 1_048_576))

    let state = "\(work)/state.db"
    let fleet = work + "/fleet"
    let berth = options.berth
    let runs = "\(options.runs)"
    let first = try hyperfine(["-r", runs, "--prepare", "rm -f \(state) \(state)-wal \(state)-shm", "\(berth) apply -f \(fleet) --state \(state)"])
    report("first apply (3,200 objects)", first, goal: 2.0)
    let noop = try hyperfine(["-w", "1", "-r", runs, "\(berth) apply -f \(fleet) --state \(state)"])
    report("no-op re-apply", noop, goal: 1.0)
    let get = try hyperfine(["-w", "2", "-r", "\(max(options.runs, 10))", "\(berth) get deployments --state \(state)"])
    report("berth get deployments (2,000 rows)", get, goal: 0.2)

    // 10,000 revisions, written through the store API (one transaction each, as `berth apply` does).
    let historyState = "\(work)/history.db"
    do {
        let store = try StateStore.open(path: historyState, create: true)
        let base = benchBaseFleet
        _ = try store.apply(try ManifestLoader.load(text: base, file: "base"), options: ApplyOptions(author: "bench"))
        let started = Date()
        for i in 1..<10_000 {
            let dep = """
                apiVersion: berth/v1
                kind: Deployment
                metadata: { name: d\(i % 50) }
                spec: { model: m, version: v1, replicas: \(i % 7) }
                """
            _ = try store.apply(try ManifestLoader.load(text: dep, file: "d"), options: ApplyOptions(author: "bench", message: "change \(i)"))
        }
        print(String(format: "stored 10,000 revisions in %.1f s (%.2f ms per apply transaction, in process)",
                     Date().timeIntervalSince(started), Date().timeIntervalSince(started) * 1000 / 9_999))
    }
    let n = "\(max(options.runs, 10))"
    let history = try hyperfine(["-w", "2", "-r", n, "\(berth) history --state \(historyState)"])
    let historyObject = try hyperfine(["-w", "2", "-r", n, "\(berth) history deployment/d7 --state \(historyState)"])
    let show = try hyperfine(["-w", "2", "-r", n, "\(berth) history show 5000 --state \(historyState)"])
    let startup = try hyperfine(["-w", "2", "-r", n, "\(berth) --version"])
    report("berth history (10,000 revisions stored)", history, goal: 0.1)
    report("berth history deployment/d7", historyObject, goal: 0.1)
    report("berth history show 5000", show, goal: 0.1)
    report("(process start: berth --version)", startup, goal: 0.1)

}

/// The benchmarks' fleet: 1,000 nodes (every 20th a standby), 200 models × 3 versions, 2,000
/// deployments, written as three files into `folder`.
func generateFleet(into folder: String) throws {
    var nodes = "", models = "", deployments = ""
    for n in 0..<1000 {
        nodes += """
            ---
            apiVersion: berth/v1
            kind: Node
            metadata: { name: gpu-\(n), labels: { rack: r\(n / 40) } }
            spec:
              address: 10.\(n / 250).\(n % 250).10
              engine: { endpoint: "tcp://10.\(n / 250).\(n % 250).10:2376", tls: { ca: /etc/berth/ca.pem, cert: /etc/berth/c.pem, key: /etc/berth/k.pem } }
              role: \(n % 20 == 0 ? "standby" : "active")
              runtime: nvidia
              gpus: { count: 8, model: A100-SXM4-80GB, memoryGiB: 80 }
              ports: { from: 20000, to: 20999 }

            """
    }
    let sha = String(repeating: "0123456789abcdef", count: 4)
    for m in 0..<200 {
        models += """
            ---
            apiVersion: berth/v1
            kind: Model
            metadata: { name: model-\(m) }
            spec:
              versions:

            """
        for v in 1...3 {
            models += """
                    - version: v\(v)
                      image: registry.internal:5000/serving/triton:24.\(v)
                      parameters: \([7, 14, 32, 70][m % 4])B
                      precision: bf16
                      artifacts:
                        - { path: /models/model-\(m)/v\(v)/model.safetensors, sha256: \(sha) }

                """
        }
    }
    for d in 0..<2000 {
        deployments += """
            ---
            apiVersion: berth/v1
            kind: Deployment
            metadata: { name: dep-\(d), labels: { team: t\(d % 17) } }
            spec:
              model: model-\(d % 200)
              version: v\(1 + d % 3)
              replicas: \(1 + d % 4)
              env: { LOG_LEVEL: info }
              volumes: [{ hostPath: /models/model-\(d % 200), containerPath: /models }]

            """
    }
    try nodes.write(toFile: folder + "/nodes.yaml", atomically: true, encoding: .utf8)
    try models.write(toFile: folder + "/models.yaml", atomically: true, encoding: .utf8)
    try deployments.write(toFile: folder + "/deployments.yaml", atomically: true, encoding: .utf8)
}
