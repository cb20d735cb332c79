import BerthModel
import BerthReconciler
import BerthStore
import Foundation
import Logging

/// What a pass adds to the status the planner's output gives, and what it says in the log.
extension ControlLoop {
    /// What the failover tracker, the image keeper and the operators' holds say of each node,
    /// written onto its status: checks failed, promoted or rejoined, images kept, cordoned or
    /// draining, GPUs out of service, and a failure verdict over all of these.
    func describeNodes(_ nodes: inout [NodeStatus], tracker: NodeHealthTracker, gates: StoredGates) async {
        for i in nodes.indices {
            let d = await tracker.details(nodes[i].name)
            nodes[i].failedChecks = d.failedChecks
            nodes[i].promoted = d.promoted
            nodes[i].rejoinedAsStandby = d.demoted
            nodes[i].images = await keeper.report(nodes[i].name)
            if let hold = gates.holds[nodes[i].name] {
                nodes[i].hold = hold.draining ? "draining" : hold.cordoned ? "cordoned" : nil
            }
            if let gpus = gates.gpuHolds[nodes[i].name], !gpus.isEmpty {
                // Serving on its other GPUs: degraded, not failed (a verdict below overrides it).
                nodes[i].reason = Reason.gpusOutOfService.rawValue
                nodes[i].message = gpus.map(\.summary).joined(separator: "; ")
                nodes[i].gpusOutOfService = gpus.map(\.gpu)
            }
            if d.notReady {
                nodes[i].ready = false
                nodes[i].reason = Reason.nodeFailed.rawValue
                nodes[i].message = "\(d.failure): \(d.error)"
            } else if d.failedChecks > 0 {
                // Failing, not declared failed yet: its replicas stay where they are.
                nodes[i].ready = true
                nodes[i].reason = Reason.suspect.rawValue
                nodes[i].message = "\(d.failedChecks) of \(options.failover.failureThreshold) checks failed (\(d.failure)): \(d.error)"
            }
            if d.promoted { nodes[i].role = "active (promoted standby)" }
            if d.demoted { nodes[i].role = "standby (rejoined)" }
        }
    }

    /// Nodes deleted from the desired state while Berth's containers ran there: they run on,
    /// unmanaged and unwatched, and stay in the status (with an event the first time) to say so.
    static func deletedNodes(previous: FleetStatus, desired: [Resource], now: Date, revision: Int64) -> (nodes: [NodeStatus], events: [Event]) {
        let desiredNodes = Set(desired.compactMap { $0.node == nil ? nil : $0.name })
        var nodes: [NodeStatus] = []
        var events: [Event] = []
        for n in previous.nodes where !desiredNodes.contains(n.name) && (n.reason == Reason.nodeDeleted.rawValue || n.containers > 0) {
            var gone = n
            gone.ready = false
            gone.role = "deleted"
            if n.reason != Reason.nodeDeleted.rawValue {
                gone.reason = Reason.nodeDeleted.rawValue
                gone.message = "deleted from the desired state while \(n.containers) Berth container(s) ran there: they run on, unmanaged and unwatched"
                events.append(Event(time: now, revision: revision, kind: "node", name: n.name, type: "Warning", reason: Reason.nodeDeleted.rawValue, message: gone.message))
            }
            nodes.append(gone)
        }
        return (nodes, events)
    }

    /// The pass in the log: each action and its outcome; an engine unreachable, once per outage;
    /// one late, once per streak; a deployment's progress when it moved.
    func report(_ pass: Reconciler.Pass, deployments: [DeploymentStatus], revision: Int64, _ m: inout Memory, logger: Logger) {
        let observedByID = Dictionary(pass.observed.values.flatMap(\.containers).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for r in pass.results {
            var meta: Logger.Metadata = ["node": "\(r.action.node)", "revision": "\(revision)"]
            if let d = StatusBuilder.containerDeployment(r.action, observed: observedByID) { meta["deployment"] = "\(d)" }
            if let error = r.error { logger.error("\(r.action) failed: \(error)", metadata: meta) } else { logger.info("\(r.action)", metadata: meta) }
        }
        for (node, why) in pass.unreachable where m.previous.nodes.first(where: { $0.name == node })?.ready != false
            && !m.unreachableSaid.contains(node) {
            logger.warning("engine unreachable: \(why)", metadata: ["node": "\(node)", "revision": "\(revision)"])
        }
        m.unreachableSaid = Set(pass.unreachable.map(\.node))
        for node in pass.late.subtracting(m.lateSaid).sorted() {
            logger.warning("engine has not answered its listing within \(reconciler.lateAfter): planned as last seen, nothing sent to it until it answers (the call goes on, up to \(reconciler.observeTimeout))",
                           metadata: ["node": "\(node)", "revision": "\(revision)"])
        }
        m.lateSaid = pass.late
        for d in deployments {
            let before = m.previous.deployments.first { $0.name == d.name }
            if before?.rollout != d.rollout || before?.updatedReady != d.updatedReady || before?.ready != d.ready {
                logger.info("\(d.rollout.rawValue): \(d.updatedReady)/\(d.desired) ready on \(d.modelVersion), \(d.ready) ready in all",
                            metadata: ["deployment": "\(d.name)", "revision": "\(revision)"])
            }
        }
    }
}
