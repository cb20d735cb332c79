import BerthModel
import BerthStore
import Foundation

// History at depth: a state with 100,000 revisions (built once, kept in /tmp/berth-bench-history
// between runs), then: snapshot time and size, `berth history --at` and `berth history diff`
// latency through the binary (hyperfine), and hashing throughput of `berth model verify` on a
// 2 GiB file against sha256sum on the same file, side by side.

func historyBenchmark(_ options: BenchOptions) throws {
    let folder = "/tmp/berth-bench-history"
    let state = folder + "/state/berth.db"
    let target = options.revisions
    print("berth-bench history — \(target) revisions, \(ProcessInfo.processInfo.activeProcessorCount) cores")
    try buildHistoryState(state, revisions: target)
    let size = (try FileManager.default.attributesOfItem(atPath: state)[.size] as? NSNumber)?.int64Value ?? 0
    print(String(format: "state: %.1f MiB", Double(size) / 1_048_576))

    // Snapshot: in process, as the controller takes it.
    var snapshotTimes: [Double] = []
    var snapshotSize: Int64 = 0
    let snapshots = SnapshotStore(statePath: state)
    for i in 0..<3 {
        let store = try StateStore.open(path: state, create: false)
        let t0 = Date()
        let r = try snapshots.create(from: store, now: Date(timeIntervalSince1970: 1_900_000_000 + Double(i)))
        snapshotTimes.append(Date().timeIntervalSince(t0))
        snapshotSize = r.sizeBytes
    }
    _ = try snapshots.prune(hourly: 0, daily: 0)
    print("snapshot".padding(44) + String(format: " median %8.1f ms  (size %.1f MiB, with integrity check and sha256)", median(snapshotTimes) * 1000, Double(snapshotSize) / 1_048_576))

    let berth = options.berth
    let middle = "2023-11-\(14 + target / 2 / 1440 % 14)T12:00:00Z"
    let at = try hyperfine(["-w", "2", "-r", "10", "\(berth) history --at \(middle) --state \(state)"])
    report("berth history --at (\(target) revisions)", at, goal: 0.1)
    let diff = try hyperfine(["-w", "2", "-r", "10", "-i", "\(berth) history diff \(target / 2) \(target) --state \(state)"])
    report("berth history diff A B", diff, goal: 0.1)

    // Hashing: a 2 GiB file, Berth's streaming sha256 against sha256sum, alternating.
    let file = folder + "/artifact-2g.bin"
    if (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value != 2 << 30 {
        runTimed("/bin/sh", ["-c", "head -c \(2 << 30) /dev/urandom > \(file)"])
    }
    let sha = String(runOutput("/usr/bin/sha256sum", [file]).prefix(64))
    let verifyState = folder + "/verify.db"
    try? FileManager.default.removeItem(atPath: verifyState)
    let store = try StateStore.open(path: verifyState, create: true)
    _ = try store.apply(try ManifestLoader.load(text: """
        apiVersion: berth/v1
        kind: Model
        metadata: { name: big }
        spec: { versions: [{ version: v1, image: "r:5000/m:1", parameters: 7B, precision: bf16, artifacts: [{ path: \(file), sha256: \(sha) }] }] }
        """, file: "m"), options: ApplyOptions(author: "bench"))
    var ours: [Double] = [], theirs: [Double] = []
    for _ in 0..<3 {
        ours.append(runTimed(berth, ["model", "verify", "big@v1", "--state", verifyState]))
        theirs.append(runTimed("/usr/bin/sha256sum", [file]))
    }
    let gib = 2.0
    print("berth model verify (2 GiB)".padding(44) + String(format: " median %6.2f s  %6.0f MiB/s", median(ours), gib * 1024 / median(ours)))
    print("sha256sum (same file)".padding(44) + String(format: " median %6.2f s  %6.0f MiB/s", median(theirs), gib * 1024 / median(theirs)))
    let ratio = median(theirs) / median(ours)
    print(String(format: "throughput ratio berth / sha256sum = %.2f× (goal ≥ 0.9×: %@)", ratio, (ratio >= 0.9 ? "meets" : "MISSES") as NSString))
}

func runOutput(_ tool: String, _ arguments: [String]) -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    try? p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// A state of `target` revisions at `state` (kept between runs: built only up to what is missing),
/// each changing one of 200 deployments, a minute apart from 2023-11-14.
func buildHistoryState(_ state: String, revisions target: Int) throws {
    let existing = FileManager.default.fileExists(atPath: state) ? (try StateStore.open(path: state, create: false).latestRevision() ?? 0) : 0
    if existing < target {
        let store = try StateStore.open(path: state, create: true)
        if existing == 0 {
            _ = try store.apply(try ManifestLoader.load(text: benchBaseFleet, file: "base"), options: ApplyOptions(author: "bench"))
        }
        let start = Date()
        let first = Int(try store.latestRevision() ?? 1)
        for i in first..<target {
            _ = try store.apply(try ManifestLoader.load(text: """
                apiVersion: berth/v1
                kind: Deployment
                metadata: { name: d\(i % 200) }
                spec: { model: m, version: v1, replicas: \(i % 7), env: { STEP: "\(i)" } }
                """, file: "d"), options: ApplyOptions(author: "bench", message: "change \(i)", time: Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 60)))
            if i % 10_000 == 0 { print("  built \(i) revisions (\(Int(Date().timeIntervalSince(start))) s)") }
        }
        print(String(format: "built %d revisions in %.0f s", target - first, Date().timeIntervalSince(start)))
    }
}
