import BerthModel
import BerthRuntime
import Foundation

extension NodeHealthTracker {
    /// Promotes the best standby in place of `failed` (the one with the most GPUs) and starts
    /// following the promotion; without a standby, says so.
    func startPromotion(failed: String, specs: [String: NodeSpec], observed: [String: NodeObservation], now: Date, at instant: MonotonicInstant) {
        let acting = (specs[failed]?.role == .active && !demoted.contains(failed)) || promoted.contains(failed)
        let replicas = Array(Set((nodes[failed]?.lastSeen ?? []).map { "\($0.deployment)/\($0.replica)" })).sorted()
        guard acting, !replicas.isEmpty else { return }
        promoted.remove(failed)
        var promotion = Promotion(failedNode: failed, standby: nil, state: .running, reason: "", replicas: replicas, detectedAt: now,
                                  deadline: now.addingTimeInterval(options.promotionDeadline))
        if let standby = standby(replacing: failed, specs: specs, observed: observed) {
            if demoted.remove(standby) == nil { promoted.insert(standby) }
            promotion.standby = standby
            events.append(Notice(kind: "node", name: standby, warning: false, reason: .promotionStarted, message: "promoted to active in place of \(failed): \(replicas.count) replica(s) to move (\(replicas.joined(separator: ", "))); deadline \(Int(options.promotionDeadline)) s"))
        } else {
            events.append(Notice(kind: "node", name: failed, warning: true, reason: .noStandby, message: "no standby node is ready to take \(failed)'s replicas; the active nodes' free GPUs are all there is until one answers"))
        }
        promotions.append(promotion)
        promotionStarts[Self.key(promotion)] = instant
        if promotions.count > 20 {
            for p in promotions.prefix(promotions.count - 20) { promotionStarts[Self.key(p)] = nil }
            promotions.removeFirst(promotions.count - 20)
        }
    }

    /// The best node acting as a standby (the one with the most GPUs): declared so and not
    /// promoted, or an active node that rejoined as a standby after a failure; answering now.
    func standby(replacing failed: String, specs: [String: NodeSpec], observed: [String: NodeObservation]) -> String? {
        specs.filter { name, spec in
            (spec.role == .standby && !promoted.contains(name) || spec.role == .active && demoted.contains(name))
                && name != failed && nodes[name]?.isFailed != true
                && { if case .reachable? = observed[name] { true } else { false } }()
        }.sorted { ($0.value.gpus.count, $1.key) > ($1.value.gpus.count, $0.key) }.first?.key
    }

    /// Keeps as many nodes acting as actives as the manifests declare: while fewer act (failed
    /// actives, actives that rejoined as standbys, a promoted standby that failed in turn) and a
    /// standby answers, it is promoted. This covers what a failure's own promotion cannot: no
    /// standby answered at the time, the promoted one failed too, or this controller never saw
    /// the failed node's replicas (it began leading while the node was down). A running
    /// promotion still waiting for a standby gets this one, so its timeline continues.
    func restoreActiveCount(specs: [String: NodeSpec], observed: [String: NodeObservation]) {
        func acting(_ name: String, _ spec: NodeSpec) -> Bool {
            (spec.role == .active && !demoted.contains(name) || promoted.contains(name)) && nodes[name]?.isFailed != true
        }
        var missing = specs.values.filter { $0.role == .active }.count - specs.filter { acting($0.key, $0.value) }.count
        while missing > 0, let standby = standby(replacing: "", specs: specs, observed: observed) {
            missing -= 1
            if demoted.remove(standby) == nil { promoted.insert(standby) }
            if let i = promotions.firstIndex(where: { $0.state == .running && $0.standby == nil }) {
                promotions[i].standby = standby
                events.append(Notice(kind: "node", name: standby, warning: false, reason: .promotionStarted,
                                     message: "answers now: promoted to active in place of \(promotions[i].failedNode), which had no standby when it failed"))
            } else {
                events.append(Notice(kind: "node", name: standby, warning: false, reason: .promotionStarted,
                                     message: "promoted to active: \(missing + 1) fewer node(s) act as actives than the manifests declare"))
            }
        }
    }

    /// Follows running promotions through this pass's plan: scheduled, started, ready (and so in
    /// the gateway, which takes ready replicas in the same pass), or failed. Times are offsets on
    /// the monotonic clock from the detection; the deadline too.
    /// Follows running promotions with this pass's plan, and adds the containers the pass created
    /// to what each node last reported: a node that stops answering right after a create must
    /// keep that replica in its place, not have it created a second time elsewhere.
    public func progress(plan: Plan, results: [ActionResult] = [], at instant: MonotonicInstant = .now) {
        for r in results where r.error == nil {
            switch r.action {
            case .create(let node, let planned):
                guard let id = r.created, let c = ObservedContainer(planned: planned, node: node, id: id) else { continue }
                if nodes[node]?.lastSeen?.contains(where: { $0.id == id }) == false { nodes[node]!.lastSeen!.append(c) }
            case .remove(let node, let id, _, _):
                nodes[node]?.lastSeen?.removeAll { $0.id == id }
            case .start:
                continue
            }
        }
        let replicas = Dictionary(uniqueKeysWithValues: plan.deployments.map { ($0.name, Dictionary($0.replicas.map { ($0.slot, $0) }, uniquingKeysWith: { a, _ in a })) })
        for i in promotions.indices where promotions[i].state == .running {
            var p = promotions[i]
            let elapsed = instant.seconds(since: promotionStarts[Self.key(p)] ?? instant)
            let at = p.detectedAt.addingTimeInterval(elapsed)
            let states = p.replicas.map { key -> ReplicaStatus? in
                let parts = key.split(separator: "/")
                return replicas[String(parts[0])]?[Int(parts[1]) ?? -1]
            }
            let moved = states.compactMap { $0 }.filter { $0.node != p.failedNode }
            // Without a standby yet, a replica that cannot be placed waits for one (until the deadline).
            if p.standby != nil, let stuck = states.compactMap({ $0 }).first(where: { $0.phase == .unschedulable }) {
                p.state = .failed
                p.reason = "replica \(stuck.slot) cannot be placed: \(stuck.message)"
            } else if moved.count == states.count {
                if p.scheduledAt == nil { p.scheduledAt = at }
                // Files not staged on the new node yet: how much, and how long until they are.
                if let waiting = moved.first(where: { $0.phase == .staging }) {
                    if p.stagingAt == nil {
                        p.stagingAt = at
                        p.missingFiles = waiting.message
                    }
                } else if p.stagingAt != nil, p.stagedAt == nil {
                    p.stagedAt = at
                }
                if p.startedAt == nil, moved.allSatisfy({ $0.phase == .starting || $0.phase == .ready }) { p.startedAt = at }
                if moved.allSatisfy({ $0.phase == .ready }) {
                    p.startedAt = p.startedAt ?? at
                    p.readyAt = at
                    p.gatewayAt = at
                    p.state = .succeeded
                }
            }
            if p.state == .running && elapsed > options.promotionDeadline {
                p.state = .failed
                p.reason = "deadline exceeded: \(Int(options.promotionDeadline)) s after the failure, \(moved.filter { $0.phase == .ready }.count) of \(p.replicas.count) replica(s) ready"
            }
            if p.state != promotions[i].state {
                func offset(_ d: Date?) -> String { d.map { String(format: "+%.1fs", $0.timeIntervalSince(p.detectedAt)) } ?? "-" }
                let files = p.stagingAt == nil ? "" : ", files staged \(offset(p.stagedAt)) (missing at \(offset(p.stagingAt)): \(p.missingFiles ?? "?"))"
                let timeline = "detected → scheduled \(offset(p.scheduledAt))\(files), started \(offset(p.startedAt)), ready \(offset(p.readyAt)), in the gateway \(offset(p.gatewayAt))"
                if p.state == .succeeded {
                    events.append(Notice(kind: "node", name: p.standby ?? p.failedNode, warning: false, reason: .promotionSucceeded,
                                         message: "\(p.replicas.count) replica(s) of \(p.failedNode) serving again after \(String(format: "%.1f", elapsed)) s: \(timeline)"))
                } else {
                    events.append(Notice(kind: "node", name: p.standby ?? p.failedNode, warning: true, reason: .promotionFailed, message: "\(p.reason); \(timeline)"))
                }
                finished.append((elapsed, p.state == .succeeded, p.reason.hasPrefix("deadline exceeded")))
                promotionStarts[Self.key(p)] = nil
            }
            promotions[i] = p
        }
    }
}
