import ArgumentParser
import BerthControl
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

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
        let identity = "berth-reconcile:\(ProcessInfo.processInfo.hostName):\(getpid())"
        if !dryRun {
            let lease = try reportingErrorsReturning { try store.acquireLease(holder: identity, ttl: 60) }!
            guard lease.holder == identity else {
                Console.error("a controller leads on this state (\(lease.holder)); it reconciles continuously. See `berth status`.")
                throw Exit.differences
            }
            epoch = lease.epoch
        }
        defer { if !dryRun { try? store.releaseLease(holder: identity) } }
        let (gates, problems) = StoredGates.read(store, desired: desired)
        for p in problems { Console.note(p) }
        let health = gates.health
        let pass = await Reconciler().pass(desired: desired, revision: revision, epoch: epoch, execute: !dryRun, health: { _, _ in health })
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
        for f in failed { Console.error("\(f.action): \(f.error!)") }
        Console.print("\(pass.results.count - failed.count) of \(pass.results.count) action(s) done; \(plan.kept.count) container(s) already matched")
        if !failed.isEmpty { throw Exit.differences }
    }
}
