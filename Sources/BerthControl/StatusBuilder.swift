import BerthDocker
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

extension Notice {
    public func event(at time: Date, revision: Int64?) -> Event {
        Event(time: time, revision: revision, kind: kind, name: name, type: warning ? "Warning" : "Normal", reason: reason.rawValue, message: message)
    }
}

/// Turns what a pass saw and planned into the status the controller stores, and the events of
/// what changed since the previous status. Pure.
public enum StatusBuilder {
    public struct Output: Sendable {
        public var deployments: [DeploymentStatus]
        public var nodes: [NodeStatus]
        public var events: [Event]
    }

    public static func build(pass: Reconciler.Pass, objects: [StoredObject], revision: Int64, previous: FleetStatus, now: Date) -> Output {
        var events: [Event] = []
        let oldDeployments = Dictionary(uniqueKeysWithValues: previous.deployments.map { ($0.name, $0) })
        let specs = Dictionary(uniqueKeysWithValues: objects.compactMap { o in o.resource.deployment.map { (o.resource.name, (o.revision, $0)) } })

        var deployments: [DeploymentStatus] = []
        for p in pass.plan.deployments {
            guard let (objectRevision, spec) = specs[p.name] else { continue }
            let old = oldDeployments[p.name]
            let minAvailable = p.desired - spec.rollout.maxUnavailable.resolve(total: p.desired, roundUp: false)
            let rollout = p.rollout
            let failing = p.replicas.filter { $0.phase == .failing || $0.phase == .unschedulable }
            var conditions: [Condition] = []
            conditions.append(Condition(
                type: .available, status: p.ready >= minAvailable,
                reason: p.ready >= minAvailable ? .minimumReplicasAvailable : .minimumReplicasUnavailable,
                message: "\(p.ready) of \(p.desired) replicas ready (at least \(minAvailable) required)", lastTransition: now))
            switch (rollout, p.blocked) {
            case (.halted, _):
                conditions.append(Condition(type: .progressing, status: false, reason: .readyDeadlineExceeded, message: p.halted ?? "", lastTransition: now))
            case (.complete, _):
                conditions.append(Condition(type: .progressing, status: true, reason: .rolloutComplete,
                                            message: "\(p.desired) replicas of \(p.modelVersion) ready", lastTransition: now))
            case (.progressing, let blocked?):
                conditions.append(Condition(type: .progressing, status: false, reason: p.blockedReason, message: blocked, lastTransition: now))
            case (.progressing, nil):
                conditions.append(Condition(type: .progressing, status: true, reason: p.rollingOut ? .rollingOut : .replicasStarting,
                                            message: "\(p.updatedReady) of \(p.desired) replicas of \(p.modelVersion) ready", lastTransition: now))
            }
            let degradedReason: (Reason, String)? =
                if let halted = p.halted { (.readyDeadlineExceeded, halted) }
                else if let blocked = p.blocked { (p.blockedReason, blocked) }
                else if let f = failing.first { (f.phase == .unschedulable ? .unschedulable : .replicaFailing, "replica \(f.slot): \(f.message)") }
                else { nil }
            conditions.append(Condition(type: .degraded, status: degradedReason != nil, reason: degradedReason?.0 ?? .asExpected,
                                        message: degradedReason?.1 ?? "", lastTransition: now))
            conditions = .carrying(conditions, from: old?.conditions)
            for c in conditions.transitions(from: old?.conditions) {
                events.append(Notice(kind: "deployment", name: p.name, warning: c.isWarning, reason: c.code, message: c.summary)
                    .event(at: now, revision: revision))
            }
            deployments.append(DeploymentStatus(
                name: p.name, objectRevision: objectRevision, observedRevision: revision, modelVersion: p.modelVersion,
                desired: p.desired, ready: p.ready, updated: p.updated, updatedReady: p.updatedReady, rollout: rollout,
                conditions: conditions, replicas: p.replicas,
                lastGoodRevision: rollout == .complete ? objectRevision : old?.lastGoodRevision))
        }

        let oldNodes = Dictionary(uniqueKeysWithValues: previous.nodes.map { ($0.name, $0) })
        var allocated: [String: Int] = [:]
        for a in pass.plan.schedule.assignments { for s in a.slices { allocated[s.node, default: 0] += s.gpus.count } }
        var nodes: [NodeStatus] = []
        for o in objects {
            guard let spec = o.resource.node else { continue }
            let name = o.resource.name
            let old = oldNodes[name]
            var status: NodeStatus
            switch pass.observed[name] {
            case .reachable(let containers)?:
                status = NodeStatus(name: name, role: spec.role.rawValue, ready: true, reason: Reason.engineReachable.rawValue, message: "",
                                    lastHeartbeat: now, gpusTotal: spec.gpus.count, gpusAllocated: allocated[name] ?? 0, containers: containers.count)
            case .unreachable(let why)?:
                status = NodeStatus(name: name, role: spec.role.rawValue, ready: false, reason: Reason.engineUnreachable.rawValue, message: why,
                                    lastHeartbeat: old?.lastHeartbeat, gpusTotal: spec.gpus.count, gpusAllocated: allocated[name] ?? 0, containers: 0)
            case nil:
                continue
            }
            if old?.ready != status.ready {
                events.append(Event(time: now, revision: revision, kind: "node", name: name, type: status.ready ? "Normal" : "Warning",
                                    reason: status.reason, message: status.ready ? "engine answers" : status.message))
            }
            nodes.append(status)
        }

        let observedByID = Dictionary(pass.observed.values.flatMap(\.containers).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for r in pass.results {
            let deployment = containerDeployment(r.action, observed: observedByID)
            events.append(Event(time: now, revision: revision, kind: deployment == nil ? "node" : "deployment", name: deployment ?? r.action.node,
                                type: r.error == nil ? "Normal" : "Warning",
                                reason: (r.error == nil ? r.action.kind.doneReason : .actionFailed).rawValue,
                                message: r.error.map { "\(r.action) failed: \($0)" } ?? r.action.description))
        }
        return Output(deployments: deployments, nodes: nodes, events: events)
    }

    /// The deployment an action is about: the planned placement's, or the observed container's label.
    static func containerDeployment(_ action: Action, observed: [String: ObservedContainer]) -> String? {
        switch action {
        case .create(_, let c): c.placement.deployment
        case .start(_, let id, _), .remove(_, let id, _, _): observed[id]?.deployment
        }
    }
}
