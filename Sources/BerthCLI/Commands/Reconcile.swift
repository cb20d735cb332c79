import ArgumentParser
import BerthControl
import BerthModel
import BerthDocker
import BerthReconciler
import BerthStore
import Foundation
import Logging

struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one reconcile pass: bring the nodes' containers to the stored desired state.",
        discussion: """
            Observes every node (one labelled list call each), schedules replicas on GPUs, and creates, \
            starts, replaces and removes Berth's containers to match; containers without Berth's labels \
            are never touched. Changed replicas are replaced at most max(1, maxUnavailable) at a time \
            per deployment, each only while enough of it stays ready (see the README's rollout rules). \
            One pass, holding the controller lease while it runs: it refuses to act while a \
            `berth controller` leads on the same state. Exit status: 0 when every action went \
            through, 1 when some failed (they are listed) or a controller holds the lease.
            """)

    @Flag(help: "Print the plan; change nothing.")
    var dryRun = false

    @OptionGroup var state: StateOptions

    func run() async throws {
        guard let store = try reportingErrorsReturning({ try state.openForReading() }) ?? nil else { return }
        let desired = try reportingErrorsReturning { try store.objects().map(\.resource) }!
        let revision = try reportingErrorsReturning { try store.latestRevision() }! ?? 0
        var epoch: Int64 = 0
        let leadership = Leadership(statePath: state.path, identity: "berth-reconcile:\(ProcessInfo.processInfo.hostName):\(getpid())", ttl: 6)
        if !dryRun {
            if let live = try reportingErrorsReturning({ try store.liveLeaseHolder() }) ?? nil {
                Console.error("a controller leads on this state (\(live.holder)); it reconciles continuously. See `berth status`.")
                throw Exit.differences
            }
            // A lease left by a controller that died is taken once it has not moved for its TTL.
            var lease = try reportingErrorsReturning { try leadership.step(store) }!
            if lease.holder != leadership.identity {
                Console.note("waiting up to \(Int(lease.ttl) + 1) s for the lease of \(lease.holder) (expired, not released) to stay unrenewed")
                let deadline = ContinuousClock.now + .seconds(lease.ttl + 1)
                while lease.holder != leadership.identity && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(250))
                    lease = try reportingErrorsReturning { try leadership.step(store) }!
                }
            }
            guard let held = leadership.current.epoch else {
                Console.error("a controller leads on this state (\(lease.holder)); it reconciles continuously. See `berth status`.")
                throw Exit.differences
            }
            epoch = held
        }
        defer { if !dryRun { leadership.release(store) } }
        // The lease is renewed while the pass works (the heartbeat), and checked before every batch of actions.
        let heartbeat = dryRun ? nil : Task { try await leadership.run() }
        defer { heartbeat?.cancel() }
        let fence = leadership.fence(store)
        let (gates, problems) = StoredGates.read(store, desired: desired)
        for p in problems { Console.note(p) }
        let health = gates.health
        // The gateways follow the pass as the controller's do: leaving replicas out before they stop.
        let gateways = GatewaySync(stateFolder: ControllerOptions.folder(ofStatePath: state.path), logger: Logger(label: "berth.reconcile"))
        var gate: (@Sendable (BerthReconciler.Plan, [String: NodeObservation], Set<String>) async -> Set<String>)?
        if !dryRun {
            gate = { @Sendable plan, observed, ready in await gateways.sync(desired: desired, plan: plan, observed: observed, ready: ready) }
        }
        let pass = await Reconciler(runtimes: ClientPool(), prober: HTTPProber()).pass(desired: desired, revision: revision, epoch: epoch, execute: !dryRun, health: { _, _ in health },
                                           gate: gate, fence: dryRun ? nil : fence)
        for (key, why) in gates.refusedVersions.sorted(by: { $0.key < $1.key }) { Console.note("\(key) not started: \(why)") }
        for (name, why) in pass.unreachable { Console.note("node \(name) not ready: \(why)") }
        let plan = pass.plan
        for u in plan.schedule.unplaced { Console.note("deployment/\(u.deployment) replica \(u.replica) unschedulable: \(u.reason)") }
        if plan.isNoOp {
            Console.print("nothing to do: \(plan.kept.count) container(s) match revision \(revision)")
            return
        }
        for action in plan.actions { Console.print((dryRun ? "would " : "") + action.description) }
        if dryRun { return }
        let failed = pass.results.filter { $0.error != nil }
        let waiting = pass.results.filter { $0.waiting != nil }
        for f in failed { Console.error("\(f.action): \(f.error!)") }
        for w in waiting { Console.note("\(w.action): \(w.waiting!)") }
        for d in pass.deferred { Console.note("\(d) waits (a gateway still routes to it, its image is being pulled, or its retry backoff); run again") }
        Console.print("\(pass.results.count - failed.count - waiting.count) of \(plan.actions.count) action(s) done; \(plan.kept.count) container(s) already matched")
        if !failed.isEmpty { throw Exit.differences }
    }
}
