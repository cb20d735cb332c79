import BerthModel
import BerthRuntime
import Foundation

/// When a node counts as failed, and how long its replicas have to come back elsewhere.
public struct FailoverOptions: Sendable {
    /// Failed checks are counted at most once per interval.
    public var checkInterval: TimeInterval = 5
    /// Failed checks in a row before a node is NotReady and its replicas move.
    public var failureThreshold = 3
    /// From a node declared failed to its replicas ready elsewhere.
    public var promotionDeadline: TimeInterval = 600
    /// At most this many nodes are failed for replica health alone within `replicaHealthWindow`:
    /// past that, failing replicas say more about the application than about the nodes (the way
    /// Kubernetes stops evicting when most of a zone is unhealthy).
    public var maxReplicaHealthFailures = 1
    public var replicaHealthWindow: TimeInterval = 600

    public init() {}
}

/// What a reachable node's replica checks say about the node.
enum ReplicaVerdict: Equatable {
    /// Its once-ready replicas all fail, while the same deployments are ready on other nodes: a
    /// fault local to this node (a GPU fallen off the bus, a wedged driver).
    case local(String)
    /// Its once-ready replicas all fail, and so do the same deployments elsewhere (or they run
    /// nowhere else): the application stalls, not the node. No node is failed for it.
    case fleetWide(String)
}

/// Counts each node's failed checks over time, declares nodes NotReady, promotes standby nodes in
/// their place and follows each promotion to its end; a node that comes back rejoins as a standby
/// (or takes its replicas back with `failback: true`; a node failed for replica health alone
/// returns to its role). Its verdicts feed each pass's plan.
public actor NodeHealthTracker {
    struct NodeState {
        /// Where the node stands: healthy → suspect (checks failing) → failed (NotReady) →
        /// healthy again (an active node whose engine was gone rejoins as a standby: `demoted`).
        var phase: Phase = .healthy
        var lastSeen: [ObservedContainer]?
        /// Running containers that answered their health check at least once.
        var everReady: Set<String> = []
        /// Which notice about this episode was given already, so it is given once.
        var noticed: Noticed = .nothing

        var isFailed: Bool { if case .failed = phase { true } else { false } }

        /// The trouble of a suspect or failed node.
        var trouble: Trouble? {
            switch phase {
            case .healthy: nil
            case .suspect(let t), .failed(let t, _, _): t
            }
        }
    }

    /// A node's health as a state machine.
    enum Phase {
        case healthy
        /// Its checks fail, not yet `failureThreshold` times in a row (or past the replica-health
        /// limit): it takes no new replicas.
        case suspect(Trouble)
        /// Declared NotReady: the wall-clock time for people, the instant for durations. Its
        /// trouble keeps the kind of failure it was declared for until it recovers.
        case failed(Trouble, since: Date, at: MonotonicInstant)
    }

    /// What a node's failing checks saw, and since when.
    struct Trouble {
        var failure: NodeFailure
        var error: String
        /// The first failed check of this episode (nil: carried over from an earlier leader).
        var firstFailure: MonotonicInstant?
        var checks = 0
    }

    /// Notices given once per episode of a node's trouble.
    enum Noticed {
        case nothing
        /// Its replicas fail, but so do the same deployments' everywhere: no node is failed for it.
        case fleetWide
        /// It would have been failed for replica health, past the per-window limit.
        case failureLimit
    }

    let options: FailoverOptions
    var nodes: [String: NodeState] = [:]
    var promoted: Set<String> = []
    var demoted: Set<String> = []
    public internal(set) var promotions: [Promotion] = []
    /// When each running promotion started, on the monotonic clock, by `Self.key(_:)`.
    var promotionStarts: [String: MonotonicInstant] = [:]
    /// When nodes were failed for replica health alone, for the per-window limit.
    var replicaHealthFailures: [MonotonicInstant] = []
    var events: [Notice] = []
    /// Finished promotions' durations and outcomes, taken by the metrics.
    var finished: [(seconds: Double, succeeded: Bool, deadlineExceeded: Bool)] = []
    /// Operators' promotion requests carried out, to be cleared in the store.
    var promotionsDone: [String] = []

    public init(options: FailoverOptions, previous: FleetStatus, now: Date = Date(), at instant: MonotonicInstant = .now) {
        self.options = options
        if let memory = previous.controller?.failover {
            promoted = Set(memory.promoted)
            demoted = Set(memory.rejoined)
            for f in memory.failed {
                nodes[f.name] = NodeState(phase: .failed(Trouble(failure: f.failure, error: f.error), since: f.since, at: instant))
            }
        } else {
            // Status stored before the memory existed: read back from the node statuses.
            for n in previous.nodes {
                if n.promoted { promoted.insert(n.name) }
                if n.rejoinedAsStandby { demoted.insert(n.name) }
                if !n.ready && n.reason == Reason.nodeFailed.rawValue {
                    let failure: NodeFailure = n.message.hasPrefix(NodeFailure.replicasFailing.rawValue) ? .replicasFailing : .engineUnreachable
                    nodes[n.name] = NodeState(phase: .failed(Trouble(failure: failure, error: ""), since: n.lastHeartbeat ?? now, at: instant))
                }
            }
        }
        promotions = previous.controller?.promotions ?? []
        // A running promotion carries on from where the wall clock says it was (read once, bounded).
        for p in promotions where p.state == .running {
            let elapsed = min(max(0, now.timeIntervalSince(p.detectedAt)), options.promotionDeadline)
            promotionStarts[Self.key(p)] = instant - .milliseconds(Int64(elapsed * 1000))
        }
    }

    static func key(_ p: Promotion) -> String { "\(p.failedNode)@\(p.detectedAt.timeIntervalSince1970)" }

    /// What the next leader needs to carry on: stored with the controller's status.
    public func memory() -> FailoverMemory {
        let failed = nodes.compactMap { name, n -> FailoverMemory.FailedNode? in
            guard case .failed(let t, let since, _) = n.phase else { return nil }
            return FailoverMemory.FailedNode(name: name, failure: t.failure, since: since, error: t.error)
        }
        return FailoverMemory(failed: failed.sorted { $0.name < $1.name }, promoted: promoted.sorted(), rejoined: demoted.sorted())
    }

    public func takeEvents() -> [Notice] {
        defer { events = [] }
        return events
    }

    public func takeFinished() -> [(seconds: Double, succeeded: Bool, deadlineExceeded: Bool)] {
        defer { finished = [] }
        return finished
    }

    public func takePromotionsDone() -> [String] {
        defer { promotionsDone = [] }
        return promotionsDone
    }

    /// What a reachable node's replicas say: nil while any replica there that has been ready
    /// before still answers (replicas that never became ready are no verdict on the node).
    /// `readyElsewhere` maps each deployment to the other nodes where it has a ready replica.
    static func replicaFailure(_ containers: [ObservedContainer], ready: Set<String>, everReady: inout Set<String>,
                               readyElsewhere: (String) -> Bool) -> ReplicaVerdict? {
        let running = containers.filter(\.running)
        everReady.formIntersection(running.map(\.id))
        everReady.formUnion(running.filter { ready.contains($0.id) }.map(\.id))
        let served = running.filter { everReady.contains($0.id) }
        guard !served.isEmpty, !served.contains(where: { ready.contains($0.id) }) else { return nil }
        let names = served.map(\.name).sorted().joined(separator: ", ")
        let deployments = Set(served.map(\.deployment)).sorted()
        let healthyElsewhere = deployments.filter(readyElsewhere)
        if healthyElsewhere.count == deployments.count {
            return .local("the engine answers but all \(served.count) replica(s) that were ready fail their health checks (\(names)) while \(deployments.joined(separator: ", ")) serve(s) on other nodes")
        }
        let failing = deployments.filter { !healthyElsewhere.contains($0) }
        return .fleetWide("all \(served.count) replica(s) that were ready fail their health checks (\(names)), but \(failing.joined(separator: ", ")) answer(s) on no other node either: the application stalls, not this node")
    }

    /// Turns this pass's observation (engines, and which containers answer their health checks)
    /// and the operators' holds into verdicts. `now` stamps what people read; `instant` (the
    /// monotonic clock) measures every duration.
    public func evaluate(observed: [String: NodeObservation], ready: Set<String>, desired: [Resource], holds: [String: NodeHold] = [:],
                  now: Date = Date(), at instant: MonotonicInstant = .now) -> FleetHealth {
        let specs = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.node.map { (r.name, $0) } })
        for name in nodes.keys where specs[name] == nil { nodes[name] = nil }
        promoted.formIntersection(specs.keys)
        demoted.formIntersection(specs.keys)
        replicaHealthFailures.removeAll { instant.seconds(since: $0) > options.replicaHealthWindow }
        carryOut(holds: holds, specs: specs)
        // Which nodes serve each deployment with a ready replica: a node's failing replicas are
        // its own fault only when the same deployments answer elsewhere.
        var readyNodes: [String: Set<String>] = [:]
        for (node, o) in observed {
            for c in o.containers where c.running && ready.contains(c.id) { readyNodes[c.deployment, default: []].insert(node) }
        }
        var health = FleetHealth()
        for (name, spec) in specs.sorted(by: { $0.key < $1.key }) {
            var n = nodes[name] ?? NodeState()
            var failure: (kind: NodeFailure, why: String)?
            var fleetWide = false
            switch observed[name] {
            case .reachable(let containers)?:
                n.lastSeen = containers
                let verdict = Self.replicaFailure(containers, ready: ready, everReady: &n.everReady,
                                                  readyElsewhere: { !(readyNodes[$0] ?? []).subtracting([name]).isEmpty })
                switch verdict {
                case .local(let why)?: failure = (.replicasFailing, why)
                case .fleetWide(let why)?:
                    fleetWide = true
                    if n.noticed != .fleetWide {
                        n.noticed = .fleetWide
                        events.append(Notice(kind: "node", name: name, warning: true, reason: .replicasFailingEverywhere, message: why + "; no node is failed for it"))
                    }
                    if case .failed(let t, _, _) = n.phase { failure = (t.failure, t.error) }  // a node already failed stays failed
                case nil: break
                }
            case .unreachable(let why)?:
                failure = (.engineUnreachable, why)
            case nil:
                nodes[name] = n
                continue
            }
            switch failure {
            case nil:
                if n.isFailed { recovered(name, spec: spec, state: n, at: instant) }
                n = NodeState(lastSeen: n.lastSeen, everReady: n.everReady, noticed: fleetWide ? n.noticed : .nothing)
            case let (kind, why)?:
                // A failed node keeps the kind of its failure until it recovers: an engine that was
                // gone, whose old replicas come back unready, still rejoins as a standby.
                var t = n.trouble ?? Trouble(failure: kind, error: why)
                if !n.isFailed { t.failure = kind }
                t.error = why
                let first = t.firstFailure ?? instant
                t.firstFailure = first
                t.checks = 1 + Int(instant.seconds(since: first) / options.checkInterval)
                switch n.phase {
                case .failed(_, let since, let at):
                    n.phase = .failed(t, since: since, at: at)
                case .healthy, .suspect:
                    n.phase = .suspect(t)
                    guard t.checks >= options.failureThreshold else { break }
                    if kind == .replicasFailing && replicaHealthFailures.count >= options.maxReplicaHealthFailures {
                        if n.noticed != .failureLimit {
                            n.noticed = .failureLimit
                            events.append(Notice(kind: "node", name: name, warning: true, reason: .nodeFailureLimited,
                                                 message: "\(why); not failed: \(replicaHealthFailures.count) node(s) were failed for replica health in the last \(Int(options.replicaHealthWindow)) s (at most \(options.maxReplicaHealthFailures)); it takes no new replicas"))
                        }
                    } else {
                        if kind == .replicasFailing { replicaHealthFailures.append(instant) }
                        n.phase = .failed(t, since: now, at: instant)
                        events.append(Notice(kind: "node", name: name, warning: true, reason: .nodeFailed, message: "\(t.checks) checks failed in a row (\(options.failureThreshold) allowed, \(Int(options.checkInterval)) s apart): \(kind.rawValue): \(why)"))
                        nodes[name] = n
                        startPromotion(failed: name, specs: specs, observed: observed, now: now, at: instant)
                    }
                }
            }
            nodes[name] = n
            if n.isFailed { health.notReady.insert(name) }
            else if case .unreachable? = observed[name], let seen = n.lastSeen { health.suspect[name] = seen }
            else if case .unreachable? = observed[name] { health.unseen.insert(name) }
            else if failure != nil { health.cordoned.insert(name) }
        }
        restoreActiveCount(specs: specs, observed: observed)
        health.promoted = promoted
        health.demoted = demoted
        return health
    }

    /// A failed node passes its checks again: an engine that was gone rejoins as a standby
    /// (unless `failback`); a node failed for its replicas' health alone returns to its role.
    private func recovered(_ name: String, spec: NodeSpec, state n: NodeState, at instant: MonotonicInstant) {
        // On the monotonic clock: a wall clock stepped back an hour must not say "-3593 s".
        guard case .failed(let t, _, let at) = n.phase else { return }
        let back = Int(instant.seconds(since: at))
        if t.failure == .replicasFailing {
            events.append(Notice(kind: "node", name: name, warning: false, reason: .nodeRecovered,
                                 message: "checks pass again \(back) s later (its failing replicas are gone; look at its GPUs before relying on it); returns to its role (\(demoted.contains(name) ? "standby" : promoted.contains(name) ? "active, promoted" : spec.role.rawValue))"))
        } else if spec.role == .active && !spec.failback && !promoted.contains(name) {
            demoted.insert(name)
            events.append(Notice(kind: "node", name: name, warning: false, reason: .nodeRejoined, message: "engine answers again after \(back) s; rejoins as a standby (failback: false); its old replicas are removed"))
        } else {
            events.append(Notice(kind: "node", name: name, warning: false, reason: .nodeRecovered, message: "engine answers again after \(back) s" + (spec.failback ? "; failback: its replicas may return" : "")))
        }
    }

    /// Operators' promotion requests.
    private func carryOut(holds: [String: NodeHold], specs: [String: NodeSpec]) {
        for (name, hold) in holds.sorted(by: { $0.key < $1.key }) where hold.promote {
            guard let spec = specs[name] else { continue }
            promotionsDone.append(name)
            if demoted.remove(name) != nil {
                events.append(Notice(kind: "node", name: name, warning: false, reason: .nodePromoted, message: "rejoined node made active again by \(hold.author)", personal: [hold.author]))
            } else if spec.role == .standby && promoted.insert(name).inserted {
                events.append(Notice(kind: "node", name: name, warning: false, reason: .nodePromoted, message: "standby promoted to active by \(hold.author)", personal: [hold.author]))
            } else {
                events.append(Notice(kind: "node", name: name, warning: false, reason: .nodePromoted, message: "already active; nothing to do"))
            }
        }
    }

    /// Details for a node's status.
    public func details(_ name: String) -> (failedChecks: Int, notReady: Bool, failure: String, error: String, promoted: Bool, demoted: Bool) {
        let n = nodes[name] ?? NodeState()
        let t = n.trouble
        return (t?.checks ?? 0, n.isFailed, t?.failure.rawValue ?? "", t?.error ?? "", promoted.contains(name), demoted.contains(name))
    }
}
