import BerthDocker
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

// Reconcile-pass latency while the controller's snapshot runs, against the same passes without
// one, on the 100,000-revision state `berth-bench history` builds. A pass here is what the
// controller's pass does — read the desired state and latest revision, list the node's containers
// (the fixture's node is pointed at the local cluster's node-1 engine), plan, write a row — so
// what it measures is the snapshot's effect on the loop. Needs `scripts/local-cluster up`.

func snapshotLatencyBenchmark(_ options: BenchOptions) async throws {
    let state = "/tmp/berth-bench-history/state/berth.db"
    guard FileManager.default.fileExists(atPath: state) else {
        fail("no history fixture at \(state): run `berth-bench history` first (it builds the 100,000-revision state)")
    }
    let store = try StateStore.open(path: state, create: false)
    let revisions = try store.latestRevision() ?? 0
    print("berth-bench snapshot-latency — \(revisions) revisions, \(ProcessInfo.processInfo.activeProcessorCount) cores")
    let reconciler = Reconciler(runtimes: ClientPool(), prober: HTTPProber())

    func pass() async throws -> Double {
        let t0 = ContinuousClock.now
        let desired = try store.objects().map(\.resource).map { r -> Resource in
            guard var node = r.node else { return r }
            node.engine = EngineEndpoint(endpoint: "unix:///run/berth-local/node-1/docker.sock")
            var r = r
            r.spec = .node(node)
            return r
        }
        let revision = try store.latestRevision() ?? 0
        _ = await reconciler.pass(desired: desired, revision: revision, execute: false)
        try store.record(events: [Event(time: Date(), revision: nil, kind: nil, name: nil, reason: "BenchPass", message: "")])
        let d = ContinuousClock.now - t0
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    var quiet: [Double] = []
    var during: [Double] = []
    var snapshotSeconds: [Double] = []
    let snapshots = SnapshotStore(statePath: state)
    for round in 0..<max(3, options.runs) {
        // Passes with nothing else running…
        for _ in 0..<10 { quiet.append(try await pass()) }
        // …and passes back to back while a snapshot copies the database on its own connection.
        let done = Flag()
        let started = Date()
        Thread.detachNewThread {
            let own = try? StateStore.open(path: state, create: false)
            if let own { _ = try? snapshots.create(from: own, now: Date(timeIntervalSince1970: 1_950_000_000 + Double(round))) }
            done.set()
        }
        while !done.isSet { during.append(try await pass()) }
        snapshotSeconds.append(Date().timeIntervalSince(started))
    }
    _ = try snapshots.prune(hourly: 0, daily: 0)
    func ms(_ xs: [Double], _ q: Double) -> Double { xs.sorted()[min(xs.count - 1, Int(Double(xs.count) * q))] * 1000 }
    print("snapshot (while passes run)".padding(44) + String(format: " median %8.1f ms", median(snapshotSeconds) * 1000))
    print("pass, no snapshot".padding(44) + String(format: " median %8.1f ms  p95 %6.1f  max %6.1f  (n=%d)", ms(quiet, 0.5), ms(quiet, 0.95), quiet.max()! * 1000, quiet.count))
    print("pass, snapshot running".padding(44) + String(format: " median %8.1f ms  p95 %6.1f  max %6.1f  (n=%d)", ms(during, 0.5), ms(during, 0.95), during.max()! * 1000, during.count))
    print(String(format: "ratio during / without = %.2f× (median), %.2f× (p95)", ms(during, 0.5) / ms(quiet, 0.5), ms(during, 0.95) / ms(quiet, 0.95)))
}

/// A one-way flag between threads.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
