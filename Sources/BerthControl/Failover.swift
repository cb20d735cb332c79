import BerthModel
import BerthReconciler
import BerthStore
import Foundation

/// When a node counts as failed, and how long its replicas have to come back elsewhere.
public struct FailoverOptions: Sendable {
    /// Failed checks are counted at most once per interval.
    public var checkInterval: TimeInterval = 5
    /// Failed checks in a row before a node is NotReady and its replicas move.
    public var failureThreshold = 3
    /// From a node declared failed to its replicas ready elsewhere.
    public var promotionDeadline: TimeInterval = 600

    public init() {}
}

/// Counts each node's failed checks over time, declares nodes NotReady, promotes standby nodes in
/// their place and follows each promotion to its end; a node that comes back rejoins as a standby
/// (or takes its replicas back with `failback: true`). Its verdicts feed each pass's plan.
actor NodeHealthTracker {
    struct NodeState {
        var failedChecks = 0
        var firstFailure: Date?
        var lastSeen: [ObservedContainer]?
        var notReadySince: Date?
        var lastError = ""
        /// `EngineUnreachable` or `ReplicasFailing`: what the failed checks saw.
        var failure = ""
        /// Running containers that answered their health check at least once.
        var everReady: Set<String> = []
    }

    let options: FailoverOptions
    var nodes: [String: NodeState] = [:]
    var promoted: Set<String> = []
    var demoted: Set<String> = []
    var promotions: [Promotion] = []
    var events: [Notice] = []
    /// Finished promotions' durations and outcomes, taken by the metrics.
    var finished: [(seconds: Double, succeeded: Bool, deadlineExceeded: Bool)] = []
    /// Operators' promotion requests carried out, to be cleared in the store.
    var promotionsDone: [String] = []

    init(options: FailoverOptions, previous: FleetStatus) {
        self.options = options
        for n in previous.nodes {
            if n.promoted { promoted.insert(n.name) }
            if n.rejoinedAsStandby { demoted.insert(n.name) }
            if !n.ready && n.reason == "NodeFailed" { nodes[n.name, default: NodeState()].notReadySince = n.lastHeartbeat ?? Date() }
        }
        promotions = previous.controller?.promotions ?? []
    }

    func takeEvents() -> [Notice] {
        defer { events = [] }
        return events
    }

    func takeFinished() -> [(seconds: Double, succeeded: Bool, deadlineExceeded: Bool)] {
        defer { finished = [] }
        return finished
    }

    func takePromotionsDone() -> [String] {
        defer { promotionsDone = [] }
        return promotionsDone
    }

    /// Why a reachable node's check fails: every replica there that has been ready before fails
    /// its health check now (a GPU fallen off the bus, a wedged driver), while none answers.
    static func replicaFailure(_ containers: [ObservedContainer], ready: Set<String>, everReady: inout Set<String>) -> String? {
        let running = containers.filter(\.running)
        everReady.formIntersection(running.map(\.id))
        everReady.formUnion(running.filter { ready.contains($0.id) }.map(\.id))
        let served = running.filter { everReady.contains($0.id) }
        guard !served.isEmpty, !served.contains(where: { ready.contains($0.id) }) else { return nil }
        return "the engine answers but all \(served.count) replica(s) that were ready fail their health checks (\(served.map(\.name).sorted().joined(separator: ", ")))"
    }

    /// Turns this pass's observation (engines, and which containers answer their health checks)
    /// and the operators' holds into verdicts.
    func evaluate(observed: [String: NodeObservation], ready: Set<String>, desired: [Resource], holds: [String: NodeHold] = [:], now: Date = Date()) -> FleetHealth {
        let specs = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0) } })
        for name in nodes.keys where specs[name] == nil { nodes[name] = nil }
        promoted.formIntersection(specs.keys)
        demoted.formIntersection(specs.keys)
        var health = FleetHealth()
        for (name, hold) in holds.sorted(by: { $0.key < $1.key }) where hold.promote {
            guard let spec = specs[name] else { continue }
            promotionsDone.append(name)
            if demoted.remove(name) != nil {
                events.append(Notice(kind: "node", name: name, warning: false, reason: "NodePromoted", message: "rejoined node made active again by \(hold.author)", personal: [hold.author]))
            } else if spec.role == .standby && promoted.insert(name).inserted {
                events.append(Notice(kind: "node", name: name, warning: false, reason: "NodePromoted", message: "standby promoted to active by \(hold.author)", personal: [hold.author]))
            } else {
                events.append(Notice(kind: "node", name: name, warning: false, reason: "NodePromoted", message: "already active; nothing to do"))
            }
        }
        for (name, spec) in specs.sorted(by: { $0.key < $1.key }) {
            var n = nodes[name] ?? NodeState()
            var failure: (kind: String, why: String)?
            switch observed[name] {
            case .reachable(let containers)?:
                n.lastSeen = containers
                if let why = Self.replicaFailure(containers, ready: ready, everReady: &n.everReady) { failure = ("ReplicasFailing", why) }
            case .unreachable(let why)?:
                failure = ("EngineUnreachable", why)
            case nil:
                nodes[name] = n
                continue
            }
            switch failure {
            case nil:
                if let since = n.notReadySince {
                    let back = Int(now.timeIntervalSince(since))
                    let what = n.failure == "ReplicasFailing"
                        ? "checks pass again \(back) s later (its failing replicas are gone; look at its GPUs before relying on it)"
                        : "engine answers again after \(back) s"
                    if spec.role == .active && !spec.failback && !promoted.contains(name) {
                        demoted.insert(name)
                        events.append(Notice(kind: "node", name: name, warning: false, reason: "NodeRejoined", message: "\(what); rejoins as a standby (failback: false); its old replicas are removed"))
                    } else {
                        events.append(Notice(kind: "node", name: name, warning: false, reason: "NodeRecovered", message: what + (spec.failback ? "; failback: its replicas may return" : "")))
                    }
                }
                n = NodeState(failedChecks: 0, firstFailure: nil, lastSeen: n.lastSeen, notReadySince: nil, lastError: "", failure: "", everReady: n.everReady)
            case let (kind, why)?:
                n.lastError = why
                n.failure = kind
                let first = n.firstFailure ?? now
                n.firstFailure = first
                n.failedChecks = 1 + Int(now.timeIntervalSince(first) / options.checkInterval)
                if n.failedChecks >= options.failureThreshold && n.notReadySince == nil {
                    n.notReadySince = now
                    events.append(Notice(kind: "node", name: name, warning: true, reason: "NodeFailed", message: "\(n.failedChecks) checks failed in a row (\(options.failureThreshold) allowed, \(Int(options.checkInterval)) s apart): \(kind): \(why)"))
                    nodes[name] = n
                    startPromotion(failed: name, specs: specs, observed: observed, now: now)
                }
            }
            nodes[name] = n
            if n.notReadySince != nil { health.notReady.insert(name) }
            else if case .unreachable? = observed[name], let seen = n.lastSeen { health.suspect[name] = seen }
            else if failure != nil { health.cordoned.insert(name) }
        }
        health.promoted = promoted
        health.demoted = demoted
        return health
    }

    func startPromotion(failed: String, specs: [String: NodeSpec], observed: [String: NodeObservation], now: Date) {
        let acting = (specs[failed]?.role == .active && !demoted.contains(failed)) || promoted.contains(failed)
        let replicas = Array(Set((nodes[failed]?.lastSeen ?? []).map { "\($0.deployment)/\($0.replica)" })).sorted()
        guard acting, !replicas.isEmpty else { return }
        promoted.remove(failed)
        var promotion = Promotion(failedNode: failed, standby: nil, state: .running, reason: "", replicas: replicas, detectedAt: now,
                                  deadline: now.addingTimeInterval(options.promotionDeadline))
        let candidates = specs.filter { name, spec in
            spec.role == .standby && !promoted.contains(name) && nodes[name]?.notReadySince == nil
                && { if case .reachable? = observed[name] { true } else { false } }()
        }.sorted { ($0.value.gpus.count, $1.key) > ($1.value.gpus.count, $0.key) }
        if let standby = candidates.first?.key {
            promoted.insert(standby)
            promotion.standby = standby
            events.append(Notice(kind: "node", name: standby, warning: false, reason: "PromotionStarted", message: "promoted to active in place of \(failed): \(replicas.count) replica(s) to move (\(replicas.joined(separator: ", "))); deadline \(Int(options.promotionDeadline)) s"))
        } else {
            events.append(Notice(kind: "node", name: failed, warning: true, reason: "NoStandby", message: "no standby node is ready to take \(failed)'s replicas; the active nodes' free GPUs are all there is"))
        }
        promotions.append(promotion)
        if promotions.count > 20 { promotions.removeFirst(promotions.count - 20) }
    }

    /// Follows running promotions through this pass's plan: scheduled, started, ready (and so in
    /// the gateway, which takes ready replicas in the same pass), or failed.
    func progress(plan: Plan, now: Date = Date()) {
        let replicas = Dictionary(uniqueKeysWithValues: plan.deployments.map { ($0.name, Dictionary($0.replicas.map { ($0.slot, $0) }, uniquingKeysWith: { a, _ in a })) })
        for i in promotions.indices where promotions[i].state == .running {
            var p = promotions[i]
            let states = p.replicas.map { key -> ReplicaStatus? in
                let parts = key.split(separator: "/")
                return replicas[String(parts[0])]?[Int(parts[1]) ?? -1]
            }
            let moved = states.compactMap { $0 }.filter { $0.node != p.failedNode }
            if let stuck = states.compactMap({ $0 }).first(where: { $0.phase == .unschedulable }) {
                p.state = .failed
                p.reason = "replica \(stuck.slot) cannot be placed: \(stuck.message)"
            } else if moved.count == states.count {
                if p.scheduledAt == nil { p.scheduledAt = now }
                if p.startedAt == nil, moved.allSatisfy({ $0.phase == .starting || $0.phase == .ready }) { p.startedAt = now }
                if moved.allSatisfy({ $0.phase == .ready }) {
                    p.startedAt = p.startedAt ?? now
                    p.readyAt = now
                    p.gatewayAt = now
                    p.state = .succeeded
                }
            }
            if p.state == .running && now > p.deadline {
                p.state = .failed
                p.reason = "deadline exceeded: \(Int(options.promotionDeadline)) s after the failure, \(moved.filter { $0.phase == .ready }.count) of \(p.replicas.count) replica(s) ready"
            }
            if p.state != promotions[i].state {
                let seconds = now.timeIntervalSince(p.detectedAt)
                func at(_ d: Date?) -> String { d.map { String(format: "+%.1fs", $0.timeIntervalSince(p.detectedAt)) } ?? "-" }
                let timeline = "detected → scheduled \(at(p.scheduledAt)), started \(at(p.startedAt)), ready \(at(p.readyAt)), in the gateway \(at(p.gatewayAt))"
                if p.state == .succeeded {
                    events.append(Notice(kind: "node", name: p.standby ?? p.failedNode, warning: false, reason: "PromotionSucceeded",
                                   message: "\(p.replicas.count) replica(s) of \(p.failedNode) serving again after \(String(format: "%.1f", seconds)) s: \(timeline)"))
                } else {
                    events.append(Notice(kind: "node", name: p.standby ?? p.failedNode, warning: true, reason: "PromotionFailed", message: "\(p.reason); \(timeline)"))
                }
                finished.append((seconds, p.state == .succeeded, p.reason.hasPrefix("deadline exceeded")))
            }
            promotions[i] = p
        }
    }

    /// Details for a node's status.
    func details(_ name: String) -> (failedChecks: Int, notReady: Bool, failure: String, error: String, promoted: Bool, demoted: Bool) {
        let n = nodes[name] ?? NodeState()
        return (n.failedChecks, n.notReadySince != nil, n.failure, n.lastError, promoted.contains(name), demoted.contains(name))
    }
}
