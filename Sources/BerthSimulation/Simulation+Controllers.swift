import BerthControl
import BerthModel
import BerthReconciler
import BerthRuntime
import BerthStore
import Foundation

// The simulated controllers: each one's turn (restart, stall, the lease) and its reconcile pass.

/// A simulated controller process: the real reconciler, failover tracker and `Leadership` (on
/// the run's state store and clock), and whether it is down or stalled.
final class SimController {
    let name: String
    var reconciler: Reconciler
    var tracker: NodeHealthTracker
    var leadership: Leadership
    /// Starts so far: each start is a new process, with an identity of its own in the lease.
    var incarnation = 1
    var downUntil: Int?
    var pausedUntil: Int?

    init(name: String, reconciler: Reconciler, tracker: NodeHealthTracker, leadership: Leadership) {
        self.name = name
        self.reconciler = reconciler
        self.tracker = tracker
        self.leadership = leadership
    }

    /// The epoch it believes it leads at.
    var epoch: Int64? { leadership.current.epoch }
}

extension Simulation {
    /// One controller's turn: restart, lease upkeep, and a pass when it believes it leads.
    func tick(_ c: SimController) async {
        if let until = c.downUntil {
            guard step >= until else { return }
            c.downUntil = nil
            c.incarnation += 1
            c.reconciler = makeReconciler(c.name)
            c.tracker = makeTracker()
            c.leadership = makeLeadership(c.name, incarnation: c.incarnation)
            log("\(c.name) starts again")
        }
        if let until = c.pausedUntil {
            guard step >= until else { return }
            c.pausedUntil = nil
            log("\(c.name) resumes (believes it leads: \(c.epoch.map { "epoch \($0)" } ?? "no"))")
        }
        if let epoch = c.epoch {
            // A stalled leader resumes and acts before its heartbeat learns the lease is gone:
            // the fence, asked before each batch, must stop it.
            // Its health watch asked the replicas since its last pass, as the controller's does beside its passes.
            await c.reconciler.watch?.round()
            await pass(c, epoch: epoch)
            // The heartbeat, as the controller's beside its passes.
            c.leadership.renew(store)
            if c.epoch == nil {
                c.reconciler.forgetHealth()
                log("\(c.name) learns it lost the lease")
            }
        } else {
            guard let taken = try? c.leadership.step(store), let epoch = c.epoch else { return }
            // A new leader starts from the stored status, as the controller does, and asks every replica afresh.
            c.tracker = makeTracker()
            c.reconciler.forgetHealth()
            log("\(c.name) takes the lease, epoch \(taken.epoch)")
            await pass(c, epoch: epoch)
        }
    }

    func pass(_ c: SimController, epoch: Int64) async {
        let desired = fleet.resources
        let tracker = c.tracker
        let (clock, gateway, name, sabotage) = (clock, gateway, c.name, options.sabotage)
        let identity = c.leadership.identity
        // Whether it holds the lease as stored (passes run one at a time: nobody takes it meanwhile).
        let held = lease
        let fenceOpen = held.map { $0.holder == identity && $0.epoch == epoch && !$0.released } ?? false
        let gatewaySpec = desired.compactMap(\.gateway).first!
        let synced = SyncLog()
        let fence: Fence? = sabotage == .noFence ? nil : c.leadership.fence(store)
        let result = await c.reconciler.pass(
            desired: desired, revision: fleet.revision, epoch: epoch,
            health: { observed, ready in
                await tracker.evaluate(observed: observed, ready: ready, desired: desired, now: clock.date, at: clock.now)
            },
            gate: { plan, observed, ready in
                let leaving = GatewayMembership.leaving(plan)
                let (members, byEndpoint) = GatewayMembership.upstream(spec: gatewaySpec, desired: desired, observed: observed, ready: ready, leaving: leaving)
                let before = gateway.routed
                let held = gateway.sync(members: members.map { ($0.endpoint, $0.inService) }, byEndpoint: byEndpoint, leaving: leaving)
                synced.record(members: members.filter(\.inService).map(\.endpoint), byEndpoint: byEndpoint, servingBefore: before)
                return sabotage == .noGatewayHold ? [] : held
            },
            fence: fence)
        await tracker.progress(plan: result.plan, results: result.results, at: clock.now)
        passes += 1
        if fenceOpen { leaderActed = true }
        for n in await tracker.takeEvents() { log("\(name): \(n.reason) \(n.name): \(n.message)") }
        _ = await tracker.takeFinished()
        _ = await tracker.takePromotionsDone()
        if fenceOpen {
            // Stored as the controller stores it: refused unless this controller holds the lease.
            let status = FleetStatus(controller: ControllerStatus(holder: identity, epoch: epoch, startedAt: clock.date, lastPassAt: clock.date,
                                                                  lastPassMilliseconds: 0, passes: passes, revision: fleet.revision, listen: nil,
                                                                  promotions: await tracker.promotions, failover: await tracker.memory()),
                                     deployments: [], nodes: [])
            if (try? store.writeStatus(status, holder: identity, now: clock.date)) != nil { self.stored = status }
        }
        let done = result.results.filter { $0.error == nil && $0.waiting == nil }.map { "\($0.action.kind.rawValue) \($0.action.containerName)@\($0.action.node)" }.sorted()
        let failed = result.results.filter { $0.error != nil }.count
        for r in result.results { if let error = r.error { explain("failed: \(r.action): \(error)") } }
        if !done.isEmpty || failed > 0 || !result.deferred.isEmpty || !result.unreachable.isEmpty {
            log("\(name) e\(epoch): \(done.joined(separator: ", "))"
                + (failed > 0 ? "; \(failed) failed" : "") + (result.deferred.isEmpty ? "" : "; deferred: \(result.deferred.map { "\($0.kind.rawValue) \($0.containerName)@\($0.node)" }.sorted().joined(separator: ", "))")
                + (result.unreachable.isEmpty ? "" : "; unreachable \(result.unreachable.map(\.node).joined(separator: ","))"))
        }
        for d in result.plan.deployments {
            explain("\(d.name): " + d.replicas.map { "\($0.slot):\($0.phase.rawValue)@\($0.node ?? "-")\($0.message.isEmpty ? "" : " (\($0.message))")" }.joined(separator: "; "))
        }
        checks.afterPass(self, controller: name, epoch: epoch, fenceOpen: fenceOpen, pass: result, synced: synced)
    }
}

/// What the gateway step saw in one pass, for the invariants.
final class SyncLog: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var inService: [String] = []
    private(set) var byEndpoint: [String: ObservedContainer] = [:]
    private(set) var servingBefore: Set<String> = []
    private(set) var happened = false

    func record(members: [String], byEndpoint: [String: ObservedContainer], servingBefore: Set<String>) {
        lock.withLock {
            inService = members
            self.byEndpoint = byEndpoint
            self.servingBefore = servingBefore
            happened = true
        }
    }
}
