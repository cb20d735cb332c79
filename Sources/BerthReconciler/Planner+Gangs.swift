import BerthModel
import BerthRuntime
import BerthScheduler
import Foundation

/// A replica placed over several nodes, as planned: one container per slice.
struct GangSlot {
    var assignment: Assignment
    /// One container per member, by rank.
    var targets: [PlannedContainer]
    /// Every container of this replica slot, on any node.
    var onSlot: [ObservedContainer]
}

/// The plan for one multi-node replica. It counts as ready when every member runs and the leader
/// (rank 0) answers its health check. A member missing from a gang that is past forming (its
/// leader ready once, or older than the ready deadline) breaks it: every member is removed and
/// the gang is created anew, since its group cannot re-form around a replaced member.
struct GangStep {
    let targets: [PlannedContainer]
    let onSlot: [ObservedContainer]
    let isReady: (ObservedContainer?) -> Bool
    let now: Date
    let deadline: TimeInterval

    var actions: [Action] = []
    var wanted = Set<String>()
    var kept: [ObservedContainer] = []
    var phase = ReplicaStatus.Phase.pending
    var message = ""
    /// The containers run the desired spec (all members present).
    var current = false
    /// A ready old replica was taken down for this one.
    var replacedReady = false
    /// Nothing was created because the version is refused.
    var refused = false
    var container: String?
    var version: String?

    init(targets: [PlannedContainer], onSlot: [ObservedContainer], isReady: @escaping (ObservedContainer?) -> Bool, now: Date, deadline: TimeInterval) {
        self.targets = targets
        self.onSlot = onSlot
        self.isReady = isReady
        self.now = now
        self.deadline = deadline
    }

    mutating func keep(_ c: ObservedContainer) { wanted.insert(c.id) }

    mutating func remove(_ c: ObservedContainer, _ reason: String) {
        actions.append(.remove(node: c.node, id: c.id, name: c.name, reason: reason))
        keep(c)
    }

    mutating func create(_ t: PlannedContainer) {
        actions.append(.create(node: t.placement.node, container: t))
    }

    /// `keepOld(losesReady)` says whether an old, serving replica must stay for now (the rollout's budget).
    mutating func plan(refusal: String?, keepOld: (Bool) -> Bool) {
        let currents = targets.map { t in onSlot.first { $0.name == t.name && $0.node == t.placement.node } }
        let present = currents.compactMap { $0 }
        let others = onSlot.filter { c in !present.contains(c) }
        let leader = currents[0]
        if present.count == targets.count {
            current = true
            present.forEach { keep($0) }
            for c in present where !c.running && c.state != "restarting" {
                actions.append(.start(node: c.node, id: c.id, name: c.name))
            }
            let ready = isReady(leader) && present.allSatisfy(\.running)
            if ready {
                phase = .ready
                kept += present
            } else {
                let age = leader.map { $0.age(now: now) } ?? 0
                phase = age > deadline ? .failing : .starting
                message = "leader's health check not answering 200 yet (\(Int(age)) s since it started)"
                kept += present.filter(\.running)
            }
            for o in others {
                if ready || !isReady(o) { remove(o, "replaced by \(targets[0].name)") } else { keep(o) }
            }
            return
        }
        if let refusal {
            refused = true
            onSlot.forEach { keep($0) }
            message = "not started: \(refusal)"
            return
        }
        if present.isEmpty {
            let losesReady = others.contains(where: isReady)
            if !others.isEmpty && keepOld(losesReady) {
                others.forEach { keep($0) }
                let old = others.first(where: isReady) ?? others[0]
                phase = isReady(old) ? .outdated : .pending
                container = old.name
                version = old.modelVersion
                message = "waiting: replacing it now would leave too few ready"
                if isReady(old) { kept.append(old) }
                return
            }
            replacedReady = losesReady
            for o in others { remove(o, "replaced by \(targets[0].name)") }
            targets.forEach { create($0) }
            message = others.isEmpty ? "creating \(targets.count) members" : "replacing \(others[0].name)"
            return
        }
        // Some members missing.
        let forming = leader.map { !isReady($0) && $0.age(now: now) <= deadline } ?? false
        if forming && others.isEmpty {
            present.forEach { keep($0) }
            for (t, c) in zip(targets, currents) where c == nil { create(t) }
            phase = .starting
            message = "\(present.count) of \(targets.count) members created"
            return
        }
        replacedReady = isReady(leader)
        let missing = zip(targets, currents).filter { $0.1 == nil }.map { $0.0.placement.node }
        for c in present + others { remove(c, "its gang lost a member on \(missing.joined(separator: ", ")); the whole gang is created anew") }
        targets.forEach { create($0) }
        message = "member on \(missing.joined(separator: ", ")) missing: creating the whole gang anew"
    }
}
