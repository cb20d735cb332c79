import BerthDocker
import BerthModel
import BerthReconciler
import BerthScheduler
import BerthStore
import Foundation
import Logging
import ServiceLifecycle

/// The reconcile loop as a service: takes the lease, runs passes while it holds it, stores status
/// and events, and stops cleanly on a graceful shutdown (containers keep running).
public final class ControlLoop: Service, Sendable {
    let options: ControllerOptions
    let board: StatusBoard
    let metrics: ControllerMetrics
    let logger: Logger
    let reconciler: Reconciler
    /// Status and event times, and the durations the loop measures (a test clock in tests).
    let clock: any ControllerClock
    /// The engines' Docker clients: the reconciler's runtimes, and the event watch and image keeper's.
    let pool: ClientPool
    let wake: WakeUps
    /// The lease: taken and renewed here and by its own heartbeat service, asked before every batch.
    public let leadership: Leadership
    /// What the last pass saw, for the services beside the loop.
    let latest = LatestPass()
    let keeper: ImageKeeper
    /// Puts staged versions' files on the nodes that need them, beside the passes.
    let staging: ArtifactStaging
    /// The services that work beside the loop in the controller's group: the lease's heartbeat,
    /// snapshots, the engine event watch, image keeping and telemetry.
    public let companions: [any Service]

    public init(options: ControllerOptions, board: StatusBoard, metrics: ControllerMetrics, logger: Logger,
                clock: any ControllerClock = SystemClock()) {
        self.options = options
        self.clock = clock
        self.board = board
        self.metrics = metrics
        self.logger = logger
        let wake = WakeUps()
        self.wake = wake
        let pool = ClientPool()
        self.pool = pool
        // Replicas are asked beside the passes; a changed verdict is worth a pass at once.
        // Health checks and metric scrapes share one kept connection per replica.
        let replicas = KeptProber()
        reconciler = Reconciler(runtimes: pool, prober: replicas, clock: clock, pulls: ImagePulls(clock: clock, onFinish: { wake.post($0) }),
                                watch: true, onHealthChange: { wake.post($0) })
        let leadership = Leadership(statePath: options.statePath, identity: options.identity, ttl: options.leaseTTL)
        self.leadership = leadership
        let keeper = ImageKeeper(pool: pool, statePath: options.statePath, logger: logger, gpuCheckImage: options.gpuCheckImage)
        self.keeper = keeper
        var companions: [any Service] = [
            leadership,
            SnapshotService(options: options, leadership: leadership, metrics: metrics, logger: logger),
            EngineEventService(pool: pool, wake: wake, latest: latest, forget: { [reconciler] in reconciler.forget($0) }),
        ]
        if let watch = reconciler.watch { companions.append(HealthWatchService(watch: watch)) }
        companions.append(MemoryTrim())
        if let interval = options.imageInterval { companions.append(ImageKeeperService(keeper: keeper, latest: latest, interval: interval, wake: wake)) }
        let staging = ArtifactStaging(pool: pool, statePath: options.statePath,
                                      settings: .init(perNode: options.stagingPerNode, image: options.stagerImage, copyPorts: options.copyPorts,
                                                      copiesPerSource: options.copiesPerSource), metrics: metrics,
                                      onChange: { wake.post($0) })
        self.staging = staging
        companions.append(StagingService(staging: staging, latest: latest, interval: options.stagingInterval))
        if let interval = options.telemetryInterval { companions.append(TelemetryService(metrics: metrics, latest: latest, interval: interval, statePath: options.statePath, board: board, fetch: { url, timeout in
            guard let answer = await replicas.get(url, timeout: timeout), (200..<300).contains(answer.status) else { return nil }
            return String(buffer: answer.body)
        })) }
        self.companions = companions
    }

    public func run() async throws {
        // A graceful shutdown wakes a pause at once; a pass in progress finishes first.
        try await withGracefulShutdownHandler {
            try await self.loop()
        } onGracefulShutdown: { [wake] in
            wake.post("shutting down")
        }
    }

    /// What the loop keeps from one pass to the next. What a leader knows beyond the state (node
    /// verdicts, promotions, what nginx runs) is made afresh from the stored status each time
    /// this controller starts to lead: a standby that waited through a promotion must not act on
    /// what it read when it started.
    struct Memory {
        var gateways: GatewaySync
        var tracker: NodeHealthTracker
        /// The status the last pass stored.
        var previous: FleetStatus
        /// Nodes whose engine stopped answering, said once per outage rather than on every pass.
        var unreachableSaid = Set<String>()
        /// Nodes whose listing came late, said once per streak.
        var lateSaid = Set<String>()
        var epoch: Int64 = 0
        var passes = 0
        /// The revision the last pass worked on; -2 while standing by.
        var seenRevision: Int64 = -1
        var loggedRevision: Int64 = -1
        var wasLeader = false
        var lastPrune: MonotonicInstant?
        var nPlusOne = NPlusOne()
    }

    /// Passes while this controller leads, pauses between them, until a graceful shutdown.
    func loop() async throws {
        var logger = self.logger
        logger[metadataKey: "controller"] = "\(options.identity)"
        let store = try StateStore.open(path: options.statePath, create: false)
        let started = clock.date
        let pseudonyms = try Pseudonyms(stateFolder: options.stateFolder)
        var m = Memory(gateways: GatewaySync(stateFolder: options.stateFolder, logger: logger),
                       tracker: NodeHealthTracker(options: options.failover, previous: FleetStatus(controller: nil, deployments: [], nodes: [])),
                       previous: (try? store.fleetStatus()) ?? FleetStatus(controller: nil, deployments: [], nodes: []))
        // Asked before every batch of engine actions: this controller still holds the lease at its epoch.
        let fence = leadership.fence(store)
        defer { latest.publish(nil) }

        while !Task.isShuttingDownGracefully {
            // 1. The lease: only its holder acts.
            guard await lead(store, &m, logger: logger) else {
                await pause(.seconds(1), store: store, seen: m.seenRevision)
                continue
            }
            // 2. One pass over the state as stored now.
            m.passes += 1
            var busy = false
            do {
                busy = try await pass(store, &m, fence: fence, started: started, pseudonyms: pseudonyms, logger: logger)
            } catch let lost as LeaseLost {
                logger.warning("\(lost)")
                leadership.lost(to: lost.holder)
                m.wasLeader = false
                reconciler.forgetHealth()
                await board.update(leader: false, holder: lost.holder)
                continue
            } catch {
                logger.error("pass \(m.passes) failed: \(error)")
                await board.failed("\(error)")
                busy = true
            }
            // Node checks are passes too: never further apart than the check interval.
            let check = Duration.milliseconds(Int64(options.failover.checkInterval * 1000))
            await pause(busy ? options.busyInterval : min(options.idleInterval, check), store: store, seen: m.seenRevision)
        }
        if m.wasLeader {
            leadership.release(store)
            logger.notice("stopped after \(m.passes) pass(es); lease released; containers keep running")
        }
    }

    /// Takes or renews the lease; true while this controller holds it. Starting or ceasing to
    /// lead resets what a leader knows.
    func lead(_ store: StateStore, _ m: inout Memory, logger: Logger) async -> Bool {
        let lease: Lease
        do {
            lease = try leadership.step(store)
        } catch {
            logger.error("cannot take or renew the lease: \(error)")
            await board.failed("\(error)")
            return false
        }
        let isLeader = lease.holder == options.identity
        await board.update(leader: isLeader, holder: lease.holder)
        metrics.setLeader(isLeader)
        // A new epoch for this same controller (on PostgreSQL, its own lease ran out and it took
        // it again) is a new leadership too: what it knew may have been acted on by another.
        if isLeader != m.wasLeader || (isLeader && lease.epoch != m.epoch) {
            if isLeader {
                m.epoch = lease.epoch
                m.previous = (try? store.fleetStatus()) ?? FleetStatus(controller: nil, deployments: [], nodes: [])
                m.tracker = NodeHealthTracker(options: options.failover, previous: m.previous, now: clock.date, at: clock.now)
                m.gateways = GatewaySync(stateFolder: options.stateFolder, logger: logger)
                // What a replica answered while another controller led says nothing now.
                reconciler.forgetHealth()
                logger.notice("leading with epoch \(m.epoch)", metadata: ["epoch": "\(m.epoch)"])
                try? store.record(events: [Event(time: clock.date, revision: nil, kind: nil, name: nil, reason: Reason.leaderElected.rawValue,
                                                 message: "\(options.identity) leads with epoch \(m.epoch)")])
            } else {
                logger.warning("lost the lease to \(lease.holder); waiting")
                reconciler.forgetHealth()  // a standby asks no replica
            }
            m.wasLeader = isLeader
        }
        guard isLeader else {
            latest.publish(nil)  // the services beside the loop stop acting
            if m.passes == 0 || m.seenRevision != -2 {
                logger.info("another controller leads (\(lease.holder), lease until \(lease.expiresAt)); standing by")
                m.seenRevision = -2
            }
            return false
        }
        return true
    }

    /// One pass: reconcile the state as stored now, then store the fleet's status and events.
    /// Returns whether the fleet is busy (the next pass comes after `busyInterval`).
    func pass(_ store: StateStore, _ m: inout Memory, fence: @escaping Fence, started: Date, pseudonyms: Pseudonyms,
              logger: Logger) async throws -> Bool {
        let t0 = clock.now
        let objects = try store.objects()
        let desired = objects.map(\.resource)
        let revision = try store.latestRevision() ?? 0
        if revision != m.loggedRevision, let r = try store.revision(revision) {
            // Who stored it, as a pseudonym: the log may travel further than the state file.
            logger.notice("working on revision \(revision) (\(r.origin.rawValue) by \(pseudonyms.user(r.author)))", metadata: ["revision": "\(revision)"])
            m.loggedRevision = revision
        }
        m.seenRevision = revision
        let (gates, gateProblems) = StoredGates.read(store, desired: desired)
        for p in gateProblems { logger.error("\(p)") }
        let (tracker, gateways, clock) = (m.tracker, m.gateways, clock)
        let pass = await reconciler.pass(
            desired: desired, revision: revision, epoch: m.epoch,
            health: { observed, ready in
                var health = await tracker.evaluate(observed: observed, ready: ready, desired: desired, holds: gates.holds, now: clock.date, at: clock.now)
                gates.apply(to: &health)
                return health
            },
            gate: { plan, observed, ready in await gateways.sync(desired: desired, plan: plan, observed: observed, ready: ready) },
            fence: fence)
        await tracker.progress(plan: pass.plan, results: pass.results)
        for node in await tracker.takePromotionsDone() { try store.promotionDone(node: node) }
        // Engine events, images and artifacts, and telemetry work beside the passes on what this one saw.
        latest.publish(LatestPass.Seen(desired: desired, revision: revision, pass: pass, fence: fence))
        let now = clock.date
        var output = StatusBuilder.build(pass: pass, objects: objects, revision: revision, previous: m.previous, now: now)
        await describeNodes(&output.nodes, tracker: tracker, gates: gates)
        let deleted = Self.deletedNodes(previous: m.previous, desired: desired, now: now, revision: revision)
        output.nodes += deleted.nodes
        output.events += deleted.events
        for e in deleted.events { logger.warning("NodeDeleted: \(e.message)", metadata: ["node": "\(e.name ?? "")"]) }
        // Node notices become events and log lines (warnings as warnings), people as pseudonyms.
        func record(_ notices: [Notice], level: Logger.Level) {
            for e in notices {
                output.events.append(e.event(at: now, revision: revision))
                logger.log(level: e.warning ? .warning : level, "\(e.reason): \(pseudonyms.redact(e.message, names: e.personal))", metadata: ["node": "\(e.name)"])
            }
        }
        record(await tracker.takeEvents(), level: .notice)
        for f in await tracker.takeFinished() { metrics.promotionFinished(seconds: f.seconds, succeeded: f.succeeded, deadlineExceeded: f.deadlineExceeded) }
        output.events += await gateways.takeEvents().map { $0.event(at: now, revision: revision) }
        record(await keeper.takeEvents(), level: .info)
        record(await staging.takeEvents(), level: .info)
        let duration = t0.duration(to: clock.now)
        report(pass, deployments: output.deployments, revision: revision, &m, logger: logger)
        let controller = ControllerStatus(
            holder: options.identity, epoch: m.epoch, startedAt: started, lastPassAt: now,
            lastPassMilliseconds: Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000),
            passes: m.passes, revision: revision, listen: await board.listen, promotions: await tracker.promotions,
            failover: await tracker.memory())
        let status = FleetStatus(controller: controller, deployments: output.deployments, nodes: output.nodes,
                                 gateways: await gateways.statuses)
        try store.writeStatus(status, events: output.events, holder: options.identity)
        m.previous = status
        await board.update(status: status, at: now)
        metrics.record(pass: pass, status: output, duration: duration)
        if let watch = reconciler.watch { metrics.record(healthWatch: watch.backlog()) }
        m.nPlusOne.update(desired: desired, nodes: status.nodes, holds: gates.holds, revision: revision, metrics: metrics)
        try autoRollback(status.deployments, objects: objects, pass: pass, store: store, logger: logger)
        if m.lastPrune.map({ clock.now.seconds(since: $0) > 3600 }) ?? true {
            m.lastPrune = clock.now
            if let n = try? store.pruneEvents(olderThanDays: options.eventRetentionDays), n > 0 {
                logger.info("pruned \(n) event(s) older than \(options.eventRetentionDays) days")
            }
        }
        if m.passes == 1 || !pass.plan.isNoOp {
            logger.debug("pass \(m.passes) at revision \(revision): \(pass.plan.actions.count) action(s), \(pass.plan.kept.count) kept")
        }
        return !pass.plan.isNoOp || !pass.deferred.isEmpty || status.deployments.contains { $0.rollout != .complete }
            || status.nodes.contains { $0.reason == Reason.suspect.rawValue } || (controller.promotions.contains { $0.state == .running })
    }

    /// Returns the deployments whose rollout halted with `autoRollback` to their last good
    /// revision (`AutoRollback` decides), each as a new revision of origin `rollback`.
    func autoRollback(_ deployments: [DeploymentStatus], objects: [StoredObject], pass: Reconciler.Pass, store: StateStore, logger: Logger) throws {
        let specs = Dictionary(objects.compactMap { o in o.resource.deployment.map { (o.resource.name, $0) } }, uniquingKeysWith: { a, _ in a })
        for decision in AutoRollback.decisions(deployments, specs: specs) {
            let key = ObjectKey(.deployment, decision.deployment)
            guard let old = try store.object(key, at: decision.toRevision) else { continue }
            let (good, reason) = (decision.toRevision, decision.reason)
            var options = ApplyOptions(author: "berth-controller", message: "automatic rollback of \(key) to revision \(good): \(reason)", origin: .rollback)
            options.time = clock.date
            let result = try store.apply([LoadedResource(resource: old)], options: options)
            // Already there (the rollback went through on an earlier pass): nothing to say again.
            guard result.revision != nil else { continue }
            logger.warning("rolled back to revision \(good): \(reason)", metadata: ["deployment": "\(decision.deployment)", "revision": "\(result.revision ?? 0)"])
            try store.record(events: [Event(time: clock.date, revision: result.revision, kind: "deployment", name: decision.deployment, type: "Warning",
                                            reason: Reason.autoRollback.rawValue, message: "returned to revision \(good): \(reason)")])
        }
    }

    /// Waits up to `interval`, returning early on an engine event, a replica's changed health
    /// verdict (a starting replica became ready: the gateway should have it at once, not at the
    /// next pass), a new revision, or shutdown. Posts resume it at once; a revision stored by
    /// another process posts nothing, so the store is looked at every `revisionLook`.
    func pause(_ interval: Duration, store: StateStore, seen: Int64) async {
        let deadline = ContinuousClock.now + interval
        while !Task.isShuttingDownGracefully {
            let left = deadline - .now
            guard left > .zero else { return }
            if let reason = await wake.wait(upTo: min(left, Self.revisionLook)) {
                logger.debug("woken: \(reason)")
                return
            }
            // Looking costs one small read.
            if seen >= 0, let latest = try? store.latestRevision(), latest != seen { return }
        }
    }

    /// How often a pause looks for a revision stored by another process (`berth apply`).
    static let revisionLook = Duration.milliseconds(100)
}
