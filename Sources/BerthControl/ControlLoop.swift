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

    public init(options: ControllerOptions, board: StatusBoard, metrics: ControllerMetrics, logger: Logger) {
        self.options = options
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
        reconciler = Reconciler(runtimes: pool, prober: replicas, pulls: ImagePulls(onFinish: { wake.post($0) }),
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
        if let interval = options.imageInterval { companions.append(ImageKeeperService(keeper: keeper, latest: latest, interval: interval, wake: wake)) }
        let staging = ArtifactStaging(pool: pool, statePath: options.statePath,
                                      settings: .init(perNode: options.stagingPerNode, image: options.stagerImage, copyPorts: options.copyPorts), metrics: metrics,
                                      onChange: { wake.post($0) })
        self.staging = staging
        companions.append(StagingService(staging: staging, latest: latest, interval: options.stagingInterval))
        if let interval = options.telemetryInterval { companions.append(TelemetryService(metrics: metrics, latest: latest, interval: interval, statePath: options.statePath, fetch: { url, timeout in
            guard let answer = await replicas.get(url, timeout: timeout), (200..<300).contains(answer.status) else { return nil }
            return String(buffer: answer.body)
        })) }
        self.companions = companions
    }

    public func run() async throws {
        var logger = self.logger
        logger[metadataKey: "controller"] = "\(options.identity)"
        let store = try StateStore.open(path: options.statePath, create: false)
        // What a leader knows beyond the state (node verdicts, promotions, what nginx runs) is made
        // afresh from the stored status each time this controller starts to lead: a standby that
        // waited through a promotion must not act on what it read when it started.
        var gateways = GatewaySync(stateFolder: options.stateFolder, logger: logger)
        var tracker = NodeHealthTracker(options: options.failover, previous: FleetStatus(controller: nil, deployments: [], nodes: []))
        let started = Date()
        let pseudonyms = try Pseudonyms(stateFolder: options.stateFolder)
        var previous = (try? store.fleetStatus()) ?? FleetStatus(controller: nil, deployments: [], nodes: [])
        // Nodes whose engine stopped answering, said once per outage rather than on every pass.
        var unreachableSaid = Set<String>()
        // Nodes whose listing came late, said once per streak.
        var lateSaid = Set<String>()
        var epoch: Int64 = 0
        var passes = 0
        var seenRevision: Int64 = -1
        var loggedRevision: Int64 = -1
        var wasLeader = false
        // Asked before every batch of engine actions: this controller still holds the lease at its epoch.
        let fence = leadership.fence(store)
        var lastPrune: ContinuousClock.Instant?
        var nPlusOne = NPlusOne()
        defer { latest.publish(nil) }

        while !Task.isShuttingDownGracefully {
            // 1. The lease: only its holder acts.
            let lease: Lease
            do {
                lease = try leadership.step(store)
            } catch {
                logger.error("cannot take or renew the lease: \(error)")
                await board.failed("\(error)")
                await pause(.seconds(1), store: store, seen: seenRevision)
                continue
            }
            let isLeader = lease.holder == options.identity
            await board.update(leader: isLeader, holder: lease.holder)
            metrics.setLeader(isLeader)
            if isLeader != wasLeader {
                if isLeader {
                    epoch = lease.epoch
                    previous = (try? store.fleetStatus()) ?? FleetStatus(controller: nil, deployments: [], nodes: [])
                    tracker = NodeHealthTracker(options: options.failover, previous: previous)
                    gateways = GatewaySync(stateFolder: options.stateFolder, logger: logger)
                    // What a replica answered while another controller led says nothing now.
                    reconciler.forgetHealth()
                    logger.notice("leading with epoch \(epoch)", metadata: ["epoch": "\(epoch)"])
                    try? store.record(events: [Event(time: Date(), revision: nil, kind: nil, name: nil, reason: Reason.leaderElected.rawValue,
                                                     message: "\(options.identity) leads with epoch \(epoch)")])
                } else {
                    logger.warning("lost the lease to \(lease.holder); waiting")
                    reconciler.forgetHealth()  // a standby asks no replica
                }
                wasLeader = isLeader
            }
            guard isLeader else {
                latest.publish(nil)  // the services beside the loop stop acting
                if passes == 0 || seenRevision != -2 {
                    logger.info("another controller leads (\(lease.holder), lease until \(lease.expiresAt)); standing by")
                    seenRevision = -2
                }
                await pause(.seconds(1), store: store, seen: seenRevision)
                continue
            }

            // 2. One pass over the state as stored now.
            passes += 1
            let clock = ContinuousClock()
            let t0 = clock.now
            var busy = false
            do {
                let objects = try store.objects()
                let desired = objects.map(\.resource)
                let revision = try store.latestRevision() ?? 0
                if revision != loggedRevision, let r = try store.revision(revision) {
                    // Who stored it, as a pseudonym: the log may travel further than the state file.
                    logger.notice("working on revision \(revision) (\(r.origin.rawValue) by \(pseudonyms.user(r.author)))", metadata: ["revision": "\(revision)"])
                    loggedRevision = revision
                }
                seenRevision = revision
                let (gates, gateProblems) = StoredGates.read(store, desired: desired)
                for p in gateProblems { logger.error("\(p)") }
                let (tracker, gateways) = (tracker, gateways)
                let pass = await reconciler.pass(
                    desired: desired, revision: revision, epoch: epoch,
                    health: { observed, ready in
                        var health = await tracker.evaluate(observed: observed, ready: ready, desired: desired, holds: gates.holds)
                        gates.apply(to: &health)
                        return health
                    },
                    gate: { plan, observed, ready in await gateways.sync(desired: desired, plan: plan, observed: observed, ready: ready) },
                    fence: fence)
                await tracker.progress(plan: pass.plan, results: pass.results)
                for node in await tracker.takePromotionsDone() { try store.promotionDone(node: node) }
                // Engine events, images and artifacts, and telemetry work beside the passes on what this one saw.
                latest.publish(LatestPass.Seen(desired: desired, revision: revision, pass: pass, fence: fence))
                let now = Date()
                var output = StatusBuilder.build(pass: pass, objects: objects, revision: revision, previous: previous, now: now)
                for i in output.nodes.indices {
                    let d = await tracker.details(output.nodes[i].name)
                    output.nodes[i].failedChecks = d.failedChecks
                    output.nodes[i].promoted = d.promoted
                    output.nodes[i].rejoinedAsStandby = d.demoted
                    output.nodes[i].images = await keeper.report(output.nodes[i].name)
                    if let hold = gates.holds[output.nodes[i].name] {
                        output.nodes[i].hold = hold.draining ? "draining" : hold.cordoned ? "cordoned" : nil
                    }
                    if let gpus = gates.gpuHolds[output.nodes[i].name], !gpus.isEmpty {
                        // Serving on its other GPUs: degraded, not failed (a verdict below overrides it).
                        output.nodes[i].reason = Reason.gpusOutOfService.rawValue
                        output.nodes[i].message = gpus.map(\.summary).joined(separator: "; ")
                        output.nodes[i].gpusOutOfService = gpus.map(\.gpu)
                    }
                    if d.notReady {
                        output.nodes[i].ready = false
                        output.nodes[i].reason = Reason.nodeFailed.rawValue
                        output.nodes[i].message = "\(d.failure): \(d.error)"
                    } else if d.failedChecks > 0 {
                        // Failing, not declared failed yet: its replicas stay where they are.
                        output.nodes[i].ready = true
                        output.nodes[i].reason = Reason.suspect.rawValue
                        output.nodes[i].message = "\(d.failedChecks) of \(options.failover.failureThreshold) checks failed (\(d.failure)): \(d.error)"
                    }
                    if d.promoted { output.nodes[i].role = "active (promoted standby)" }
                    if d.demoted { output.nodes[i].role = "standby (rejoined)" }
                }
                // A node deleted while Berth's containers ran there: they run on unmanaged and unwatched.
                let desiredNodes = Set(desired.compactMap { $0.node == nil ? nil : $0.name })
                for n in previous.nodes where !desiredNodes.contains(n.name) && (n.reason == Reason.nodeDeleted.rawValue || n.containers > 0) {
                    var gone = n
                    gone.ready = false
                    gone.role = "deleted"
                    if n.reason != Reason.nodeDeleted.rawValue {
                        gone.reason = Reason.nodeDeleted.rawValue
                        gone.message = "deleted from the desired state while \(n.containers) Berth container(s) ran there: they run on, unmanaged and unwatched"
                        output.events.append(Event(time: now, revision: revision, kind: "node", name: n.name, type: "Warning", reason: Reason.nodeDeleted.rawValue, message: gone.message))
                        logger.warning("NodeDeleted: \(gone.message)", metadata: ["node": "\(n.name)"])
                    }
                    output.nodes.append(gone)
                }
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
                let observedByID = Dictionary(pass.observed.values.flatMap(\.containers).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for r in pass.results {
                    var meta: Logger.Metadata = ["node": "\(r.action.node)", "revision": "\(revision)"]
                    if let d = StatusBuilder.containerDeployment(r.action, observed: observedByID) { meta["deployment"] = "\(d)" }
                    if let error = r.error { logger.error("\(r.action) failed: \(error)", metadata: meta) } else { logger.info("\(r.action)", metadata: meta) }
                }
                for (node, why) in pass.unreachable where previous.nodes.first(where: { $0.name == node })?.ready != false
                    && !unreachableSaid.contains(node) {
                    logger.warning("engine unreachable: \(why)", metadata: ["node": "\(node)", "revision": "\(revision)"])
                }
                unreachableSaid = Set(pass.unreachable.map(\.node))
                for node in pass.late.subtracting(lateSaid).sorted() {
                    logger.warning("engine has not answered its listing within \(reconciler.lateAfter): planned as last seen, nothing sent to it until it answers (the call goes on, up to \(reconciler.observeTimeout))",
                                   metadata: ["node": "\(node)", "revision": "\(revision)"])
                }
                lateSaid = pass.late
                for d in output.deployments {
                    let before = previous.deployments.first { $0.name == d.name }
                    if before?.rollout != d.rollout || before?.updatedReady != d.updatedReady || before?.ready != d.ready {
                        logger.info("\(d.rollout.rawValue): \(d.updatedReady)/\(d.desired) ready on \(d.modelVersion), \(d.ready) ready in all",
                                    metadata: ["deployment": "\(d.name)", "revision": "\(revision)"])
                    }
                }
                let controller = ControllerStatus(
                    holder: options.identity, epoch: epoch, startedAt: started, lastPassAt: now,
                    lastPassMilliseconds: Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000),
                    passes: passes, revision: revision, listen: await board.listen, promotions: await tracker.promotions,
                    failover: await tracker.memory())
                let status = FleetStatus(controller: controller, deployments: output.deployments, nodes: output.nodes,
                                         gateways: await gateways.statuses)
                try store.writeStatus(status, events: output.events, holder: options.identity)
                previous = status
                await board.update(status: status, at: now)
                metrics.record(pass: pass, status: output, duration: duration)
                if let watch = reconciler.watch { metrics.record(healthWatch: watch.backlog()) }
                nPlusOne.update(desired: desired, nodes: status.nodes, holds: gates.holds, revision: revision, metrics: metrics)
                try autoRollback(status.deployments, objects: objects, pass: pass, store: store, logger: logger)
                if lastPrune.map({ ContinuousClock.now - $0 > .seconds(3600) }) ?? true {
                    lastPrune = .now
                    if let n = try? store.pruneEvents(olderThanDays: options.eventRetentionDays), n > 0 {
                        logger.info("pruned \(n) event(s) older than \(options.eventRetentionDays) days")
                    }
                }
                busy = !pass.plan.isNoOp || !pass.deferred.isEmpty || status.deployments.contains { $0.rollout != .complete }
                    || status.nodes.contains { $0.reason == Reason.suspect.rawValue } || (controller.promotions.contains { $0.state == .running })
                if passes == 1 || !pass.plan.isNoOp {
                    logger.debug("pass \(passes) at revision \(revision): \(pass.plan.actions.count) action(s), \(pass.plan.kept.count) kept")
                }
            } catch let lost as LeaseLost {
                logger.warning("\(lost)")
                leadership.lost(to: lost.holder)
                wasLeader = false
                reconciler.forgetHealth()
                await board.update(leader: false, holder: lost.holder)
                continue
            } catch {
                logger.error("pass \(passes) failed: \(error)")
                await board.failed("\(error)")
                busy = true
            }
            // Node checks are passes too: never further apart than the check interval.
            let check = Duration.milliseconds(Int64(options.failover.checkInterval * 1000))
            await pause(busy ? options.busyInterval : min(options.idleInterval, check), store: store, seen: seenRevision)
        }
        if wasLeader {
            leadership.release(store)
            logger.notice("stopped after \(passes) pass(es); lease released; containers keep running")
        }
    }

    /// Returns the deployments whose rollout halted with `autoRollback` to their last good
    /// revision, as a new revision of origin `rollback`.
    func autoRollback(_ deployments: [DeploymentStatus], objects: [StoredObject], pass: Reconciler.Pass, store: StateStore, logger: Logger) throws {
        for d in deployments where d.rollout == .halted {
            guard let spec = objects.first(where: { $0.resource.kind == .deployment && $0.resource.name == d.name })?.resource.deployment,
                  spec.rollout.autoRollback, let good = d.lastGoodRevision, good != d.objectRevision else { continue }
            let key = ObjectKey(.deployment, d.name)
            guard let old = try store.object(key, at: good) else { continue }
            let reason = d.conditions[ConditionType.progressing.rawValue]?.message ?? "ready deadline exceeded"
            var options = ApplyOptions(author: "berth-controller", message: "automatic rollback of \(key) to revision \(good): \(reason)", origin: .rollback)
            options.time = Date()
            let result = try store.apply([LoadedResource(resource: old)], options: options)
            // Already there (the rollback went through on an earlier pass): nothing to say again.
            guard result.revision != nil else { continue }
            logger.warning("rolled back to revision \(good): \(reason)", metadata: ["deployment": "\(d.name)", "revision": "\(result.revision ?? 0)"])
            try store.record(events: [Event(time: Date(), revision: result.revision, kind: "deployment", name: d.name, type: "Warning",
                                            reason: Reason.autoRollback.rawValue, message: "returned to revision \(good): \(reason)")])
        }
    }

    /// Waits up to `interval`, returning early on an engine event, a replica's changed health
    /// verdict (a starting replica became ready: the gateway should have it at once, not at the
    /// next pass), a new revision, or shutdown.
    func pause(_ interval: Duration, store: StateStore, seen: Int64) async {
        let deadline = ContinuousClock.now + interval
        var ticks = 0
        while ContinuousClock.now < deadline, !Task.isShuttingDownGracefully {
            if let reason = wake.take() {
                logger.debug("woken: \(reason)")
                return
            }
            ticks += 1
            // A new revision is worth a pass at once; looking costs one small read.
            if ticks % 4 == 0, seen >= 0, let latest = try? store.latestRevision(), latest != seen { return }
            try? await Task.sleep(for: .milliseconds(25))
        }
    }
}

/// The N+1 metric, asked again only when the desired revision, a node's readiness or acting
/// role, or an operator's hold changes (each answer runs the scheduler once per active node), and
/// not at all beyond `maxNodes` nodes, where `berth plan --fail-any` asks it on demand.
public struct NPlusOne {
    static let maxNodes = 256
    var lastKey = ""

    mutating func update(desired: [Resource], nodes: [NodeStatus], holds: [String: NodeHold], revision: Int64, metrics: ControllerMetrics) {
        let key = "\(revision)|" + nodes.map { "\($0.name):\($0.ready):\($0.promoted):\($0.rejoinedAsStandby)" }.joined(separator: ",")
            + "|" + holds.values.map { "\($0.node):\($0.cordoned):\($0.draining)" }.sorted().joined(separator: ",")
        guard key != lastKey, nodes.count <= Self.maxNodes else { return }
        lastKey = key
        metrics.record(nodeLoss: WhatIf.losingAnyOne(Self.fleet(desired: desired, nodes: nodes, holds: holds)))
    }

    /// The fleet as it stands: failed nodes not ready, promoted standbys acting as actives,
    /// rejoined nodes as standbys, cordoned and draining nodes taking no replicas. Without a
    /// stored status (no controller ran yet) every node is ready in its declared role.
    public static func fleet(desired: [Resource], nodes: [NodeStatus], holds: [String: NodeHold]) -> FleetInput {
        let seen = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var fleet = FleetInput(desired, ready: { seen[$0]?.ready ?? true })
        for i in fleet.nodes.indices {
            let name = fleet.nodes[i].name
            if let n = seen[name] {
                if n.promoted { fleet.nodes[i].spec.role = .active }
                if n.rejoinedAsStandby { fleet.nodes[i].spec.role = .standby }
                // GPUs out of service take nothing, in a what-if as in a pass.
                fleet.nodes[i].outOfService = Set(n.gpusOutOfService ?? [])
            }
            if let hold = holds[name] {
                fleet.nodes[i].cordoned = hold.cordoned
                fleet.nodes[i].draining = hold.draining
            }
        }
        return fleet
    }
}
