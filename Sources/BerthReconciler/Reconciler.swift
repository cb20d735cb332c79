import BerthRuntime
import BerthModel
import Foundation

/// Observe → probe → plan → execute, one pass at a time.
public struct Reconciler: Sendable {
    /// Each node's container runtime.
    public let runtimes: any RuntimeProvider
    /// How replicas' health endpoints are asked.
    public let probe: HealthProbe
    /// When each replica last answered 200: a pass asks a ready replica again only once its
    /// deployment's `health.intervalSeconds` is over.
    public let probeMemory = ProbeMemory()
    /// Where ages, backoffs and deadlines read the time.
    public let clock: any ControllerClock
    public let backoff: Backoff
    /// How long one node's list call may take.
    public let observeTimeout: Duration
    /// How long a pass waits for a node's listing before it plans that node as last seen.
    public let lateAfter: Duration
    /// Listings kept across passes (see `Listings`).
    public let listings = Listings()
    /// When each container was first seen running (ready deadlines count from there).
    public let ages = ContainerAges()
    /// Image pulls in flight beside the passes.
    public let pulls: ImagePulls
    /// When set, replicas are asked beside the passes (see `HealthWatch`, whose `run()` or
    /// `round()` someone must call) and a pass asks none; else each pass asks those due.
    public let watch: HealthWatch?

    /// `watch`: ask replicas beside the passes, calling `onHealthChange` when one's verdict changes.
    public init(runtimes: any RuntimeProvider, prober: any ReplicaProber, clock: any ControllerClock = SystemClock(),
                backoff: Backoff = Backoff(), observeTimeout: Duration = .seconds(5), lateAfter: Duration = .seconds(1),
                pulls: ImagePulls? = nil, watch: Bool = false, onHealthChange: @escaping @Sendable (String) -> Void = { _ in }) {
        self.lateAfter = lateAfter
        self.runtimes = runtimes
        self.probe = HealthProbe(prober)
        self.clock = clock
        self.backoff = backoff
        self.observeTimeout = observeTimeout
        self.pulls = pulls ?? ImagePulls(clock: clock)
        self.watch = watch ? HealthWatch(probe: probe, memory: probeMemory, clock: clock, onChange: onHealthChange) : nil
    }

    /// A replica's engine said it died, stopped or was removed: what it answered before says nothing.
    public func forget(_ id: String) {
        if let watch { watch.forget(id) } else { probeMemory.forget(id) }
    }

    /// Forgets every replica's answers (this controller starts or stops leading).
    public func forgetHealth() {
        if let watch { watch.reset() } else { probeMemory.forgetAll() }
    }

    /// What one pass saw, planned and did.
    public struct Pass: Sendable {
        public var observed: [String: NodeObservation]
        /// Ids of the containers whose health check answered 200.
        public var ready: Set<String>
        public var plan: Plan
        /// Empty when the plan was not executed (a dry run, or nothing to do).
        public var results: [ActionResult]
        /// Actions of the plan held back by the per-container backoff.
        public var deferred: [Action]
        /// The verdicts and holds the plan was made with.
        public var health = FleetHealth()
        /// Nodes whose listing was still out when the pass planned: planned as last seen, sent nothing.
        public var late: Set<String> = []

        /// Nodes whose engines did not answer, with why, by name.
        public var unreachable: [(node: String, reason: String)] {
            observed.sorted { $0.key < $1.key }.compactMap { name, o in
                if case .unreachable(let why) = o { (name, why) } else { nil }
            }
        }
    }

    /// One level-triggered pass over `desired` (the state at `revision`): observe every node,
    /// probe the health endpoint of every running replica due for it (or, with a `watch`, take
    /// the watch's verdicts), plan, and unless `execute` is false,
    /// run the plan. `epoch` is stamped on the containers it creates.
    ///
    /// `gate`, when given, runs after planning and before anything executes (the gateways take
    /// leaving replicas out of service there) and returns the ids of containers that must not be
    /// removed yet; their removals, and the creates that would reuse their node and port, wait.
    /// `health`, when given, turns this pass's observation into the controller's verdicts about
    /// nodes (failures counted over time, promotions) before planning.
    /// `fence`, when given, is asked before each node's batch of actions; a batch it refuses is
    /// not sent (a deposed leader stops acting at once).
    public func pass(desired: [Resource], revision: Int64, epoch: Int64 = 0, execute: Bool = true,
                     health: (@Sendable ([String: NodeObservation], Set<String>) async -> FleetHealth)? = nil,
                     gate: (@Sendable (Plan, [String: NodeObservation], Set<String>) async -> Set<String>)? = nil,
                     fence: Fence? = nil) async -> Pass {
        let nodes = desired.compactMap { r in r.node.map { (name: r.name, spec: $0) } }
        let (listed, late) = await observeBounded(nodes)
        // Ages are as of this instant: whether an answer came before a container's current run
        // began is judged against it, not against a later now.
        let seenAt = clock.now
        let observed = await ages.stamp(listed, at: seenAt)
        let ready: Set<String>
        if let watch {
            await watch.track(observed, desired: desired, seenAt: seenAt)
            ready = HealthProbe.remembered(observed, desired: desired, memory: probeMemory, seenAt: seenAt, now: clock.now)
        } else {
            ready = await probe.ready(observed, desired: desired, memory: probeMemory, now: clock.now)
        }
        var verdicts = await health?(observed, ready) ?? FleetHealth()
        verdicts.failingChecks = Set(probeMemory.failing().keys).intersection(ready)
        var plan = Planner.plan(desired: desired, observed: observed, ready: ready, revision: revision, epoch: epoch,
                                now: clock.date, health: verdicts)
        await noteFailingChecks(&plan, observed: observed, desired: desired)
        let held = await gate?(plan, observed, ready) ?? []
        // Containers that are ready, or neither there nor planned, start their backoff afresh — on
        // every pass, the quiet ones included: a replica started once and ready since must not
        // wait out a longer backoff the next time it dies. Nothing to forget costs nothing.
        let containers = observed.values.flatMap(\.containers)
        if execute, await !backoff.isEmpty {
            func keys(_ c: ObservedContainer) -> [String] { [Action.startKey(id: c.id), Action.createKey(node: c.node, name: c.name)] }
            let healthy = Set(containers.filter { ready.contains($0.id) }.flatMap(keys))
            let present = Set(containers.flatMap(keys)).union(plan.actions.map(\.backoffKey))
            await backoff.reset { !healthy.contains($0) && present.contains($0) }
        }
        guard execute, !plan.isNoOp else { return Pass(observed: observed, ready: ready, plan: plan, results: [], deferred: [], health: verdicts, late: late) }
        var now: [Action] = []
        var deferred: [Action] = []
        // Ports of containers whose removal waits: a create that wants the same port waits too.
        let heldPorts = Set(containers.filter { held.contains($0.id) }.map { "\($0.node):\($0.hostPort)" })
        for action in plan.actions {
            // Its engine has not answered this pass's listing: nothing is sent to it until it does.
            if late.contains(action.node) {
                deferred.append(action)
                continue
            }
            switch action {
            case .remove(_, let id, _, _) where held.contains(id):
                deferred.append(action)
                continue
            case .create(let node, let c) where heldPorts.contains("\(node):\(c.placement.hostPort)"):
                deferred.append(action)
                continue
            default: break
            }
            if case .remove = action { now.append(action); continue }
            // A replica whose image is being pulled waits for the pull, not for its backoff.
            if case .create(let node, let c) = action, let pull = await pulls.running(node: node, image: c.spec.image) {
                deferred.append(action)
                Self.mark(&plan, container: c.name, phase: .pulling, message: pull.summary)
                continue
            }
            if await backoff.allows(action.backoffKey, now: clock.now) { now.append(action) } else { deferred.append(action) }
        }
        var runnable = plan
        runnable.actions = now
        let results = await self.execute(runnable, nodes: Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.spec) }), fence: fence,
                                          occupying: Dictionary(containers.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }))
        for r in results where r.action.kind != .remove && r.waiting == nil { await backoff.attempted(r.action.backoffKey, now: clock.now) }
        for r in results {
            if let waiting = r.waiting, case .create(_, let c) = r.action { Self.mark(&plan, container: c.name, phase: .pulling, message: waiting) }
        }
        return Pass(observed: observed, ready: ready, plan: plan, results: results, deferred: deferred, health: verdicts, late: late)
    }

    /// Sets the phase of the replica planned as `container`.
    /// Says on each ready replica that is failing its checks how far it is from leaving the gateway.
    func noteFailingChecks(_ plan: inout Plan, observed: [String: NodeObservation], desired: [Resource]) async {
        let failing = probeMemory.failing()
        guard !failing.isEmpty else { return }
        let checks = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.deployment.map { (r.name, $0.health) } })
        let names = Dictionary(observed.values.flatMap(\.containers).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for d in plan.deployments.indices {
            for r in plan.deployments[d].replicas.indices {
                guard let c = plan.deployments[d].replicas[r].container.flatMap({ names[$0] }), let e = failing[c.id],
                      let check = checks[c.deployment] else { continue }
                let since = Int((clock.now - e.answered).components.seconds)
                let grace = ProbeMemory.grace(check).components.seconds
                plan.deployments[d].replicas[r].message =
                    "health check failed \(e.failures) time(s) since its last 200, \(since) s ago: still in service; leaves the gateway at \(grace) s without one"
            }
        }
    }

    static func mark(_ plan: inout Plan, container: String, phase: ReplicaStatus.Phase, message: String) {
        for d in plan.deployments.indices {
            for r in plan.deployments[d].replicas.indices where plan.deployments[d].replicas[r].container == container {
                plan.deployments[d].replicas[r].phase = phase
                plan.deployments[d].replicas[r].message = message
            }
        }
    }

    /// A replica's health endpoint (see `HealthProbe.url`).
    public static func healthURL(node: NodeSpec, deployment: DeploymentSpec, hostPort: Int) -> String {
        HealthProbe.url(node: node, deployment: deployment, hostPort: hostPort)
    }

    /// Every node's listing, waiting at most `lateAfter` for any that was seen before: one
    /// still out then is taken as last seen and returned in `late` (its call goes on, for a
    /// later pass). Nodes never seen are waited for, up to the observe timeout.
    public func observeBounded(_ nodes: [(name: String, spec: NodeSpec)]) async -> (observed: [String: NodeObservation], late: Set<String>) {
        await listings.retain(Set(nodes.map(\.name)))
        var calls: [(name: String, task: Task<NodeObservation, Never>, seen: NodeObservation?)] = []
        for (name, spec) in nodes {
            let task = await listings.call(name) { [self] in await list(name, spec) }
            calls.append((name, task, await listings.lastSeen(name)))
        }
        let listings = self.listings
        // Those seen before: until they are all in or `lateAfter` is over.
        let known = calls.filter { $0.seen != nil }
        let gathering = Gathering(expected: known.count)
        for c in known { Task { let o = await c.task.value; await listings.finished(c.name, o); gathering.add(c.name, o) } }
        let deadline = Task { try? await Task.sleep(for: lateAfter); gathering.finish() }
        var observed = await withCheckedContinuation { gathering.wait($0) }
        deadline.cancel()
        var late = Set<String>()
        for c in known where observed[c.name] == nil {
            observed[c.name] = c.seen
            late.insert(c.name)
        }
        // Those never seen: waited for (each bounded by the observe timeout).
        for c in calls where c.seen == nil {
            let o = await c.task.value
            await listings.finished(c.name, o)
            observed[c.name] = o
        }
        return (observed, late)
    }

    /// One node's labelled list call, bounded by the observe timeout.
    func list(_ name: String, _ spec: NodeSpec) async -> NodeObservation {
        do {
            let runtime = try await runtimes.runtime(for: spec.engine)
            // A node whose engine does not answer within seconds is a failed check, not a stalled pass.
            let containers = try await runtime.listContainers(timeout: observeTimeout)
            return .reachable(containers.compactMap { ObservedContainer($0, node: name) })
        } catch {
            await runtimes.forget(spec.engine)
            return .unreachable("\(error)")
        }
    }
}
