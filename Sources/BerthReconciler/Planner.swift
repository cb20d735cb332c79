// Longer than the ~300 lines a file should have: `Planner.plan` is one pass over the
// deployments whose steps (slots, rollouts, lingering replicas, orphans) share per-deployment
// state; splitting it into functions would pass that state around by hand. Its types live in
// Plan.swift, gangs in Planner+Gangs.swift.
import BerthRuntime
import BerthModel
import BerthScheduler
import Foundation

/// Computes a pass's plan from the desired state, what the nodes report and which containers
/// answer their health checks. Pure.
///
/// Level-triggered: nothing is remembered between passes. Running containers are the previous
/// assignments the scheduler keeps stable. A deployment whose containers carry an older template
/// rolls: up to `maxSurge` extra replicas (slots from `replicas` on) are scheduled while it does,
/// and an old replica that is ready is replaced (removed, then its slot created anew — with host
/// networking both would want the same port and GPUs) only while the ready replicas, counting it
/// out, stay at or above `replicas - maxUnavailable`. Readiness, not "running", is what counts.
/// A new replica that misses its ready deadline halts the rollout: no further ready old replica
/// is replaced. Berth containers nobody wants are removed; containers without Berth's labels
/// never appear here at all.
public enum Planner {
    public static func plan(desired: [Resource], observed rawObserved: [String: NodeObservation], ready: Set<String> = [],
                            revision: Int64, epoch: Int64, now: Date = Date(), health: FleetHealth = FleetHealth()) -> Plan {
        // A suspect node counts with what it last reported, cordoned; a declared one not at all.
        var observed = rawObserved
        for (node, containers) in health.suspect where !health.notReady.contains(node) { observed[node] = .reachable(containers) }
        var input = FleetInput(desired) { name in
            if health.notReady.contains(name) { return false }
            if case .reachable = observed[name] { return true } else { return false }
        }
        for i in input.nodes.indices {
            let name = input.nodes[i].name
            if health.suspect[name] != nil || health.cordoned.contains(name) { input.nodes[i].cordoned = true }
            if health.draining.contains(name) { input.nodes[i].draining = true }
            if let gpus = health.outOfServiceGPUs[name] { input.nodes[i].outOfService = gpus }
            if health.promoted.contains(name) { input.nodes[i].spec.role = .active }
            if health.demoted.contains(name) { input.nodes[i].spec.role = .standby }
        }
        let nodeStates = Dictionary(uniqueKeysWithValues: input.nodes.map { ($0.name, $0) })
        let all = observed.values.flatMap(\.containers)
        let byDeployment = Dictionary(grouping: all, by: \.deployment)
        func isReady(_ c: ObservedContainer?) -> Bool { c.map { $0.running && ready.contains($0.id) } ?? false }
        /// Ready and passing its checks: what a rollout's availability budget counts. One failing
        /// within its grace serves on, but may be gone in seconds (a stall the whole fleet shares).
        func isSound(_ c: ObservedContainer?) -> Bool { c.map { isReady($0) && !health.failingChecks.contains($0.id) } ?? false }
        /// A replica on a draining node, or holding a GPU out of service, moves like an outdated
        /// one: its successor is up first.
        func moving(_ c: ObservedContainer) -> Bool {
            health.draining.contains(c.node) || !(health.outOfServiceGPUs[c.node]?.isDisjoint(with: c.gpus) ?? true)
        }

        // Surge slots exist only while a deployment rolls.
        var templates: [String: String] = [:]
        var replicaCounts: [String: Int] = [:]
        for i in input.deployments.indices {
            let request = input.deployments[i]
            let template = ContainerSpecBuilder.templateHash(spec: request.spec, model: request.model)
            templates[request.name] = template
            let replicas = request.spec.replicas
            replicaCounts[request.name] = replicas
            let mine = byDeployment[request.name] ?? []
            let outdated = mine.contains { $0.replica < replicas && ($0.templateHash != template || moving($0)) }
            let surging = mine.contains { $0.replica >= replicas }
            let settled = (0..<replicas).allSatisfy { slot in mine.contains { $0.replica == slot && $0.templateHash == template && isReady($0) } }
            if outdated || (surging && !settled) {
                input.deployments[i].spec.replicas += request.spec.rollout.maxSurge.resolve(total: replicas, roundUp: true)
            }
        }

        // Ready replicas no slot wants any more (past the count after a scale-down, or a finished
        // surge) keep serving while their deployment has fewer ready replicas than it asks for:
        // removing them then would take capacity the controller cannot give back yet. Their GPUs
        // and ports are booked, so nothing new is placed on them; they go once the count is ready.
        var lingering: [String: [ObservedContainer]] = [:]
        for request in input.deployments {
            let slots = request.spec.replicas  // surge slots included while it rolls
            let mine = byDeployment[request.name] ?? []
            let readySlots = Set(mine.filter { $0.replica < slots && $0.rank == 0 && isReady($0) }.map(\.replica))
            var shortfall = replicaCounts[request.name]! - readySlots.count
            for c in mine.filter({ $0.replica >= slots && $0.gangSize == 1 && isReady($0) }).sorted(by: { ($0.replica, $0.node) < ($1.replica, $1.node) }) {
                guard shortfall > 0 else { break }
                lingering[request.name, default: []].append(c)
                shortfall -= 1
            }
        }

        // Running containers, one per replica, are what the scheduler should keep in place; the
        // members of a multi-node replica make one assignment, its slices in rank order.
        // The first container of a replica, by (running, node, name), stands for it: found in
        // one pass, without sorting the fleet's containers.
        struct Key: Hashable {
            var deployment: String
            var replica: Int
        }
        // A running container on a node that may run replicas stands before one left on a node
        // that failed and came back as a standby: the scheduler keeps the slot where it serves,
        // and books the GPUs it holds.
        func eligible(_ node: String) -> Int { nodeStates[node].map { $0.ready && $0.spec.role == .active } ?? false ? 0 : 1 }
        func before(_ a: ObservedContainer, _ b: ObservedContainer) -> Bool {
            (a.running ? 0 : 1, eligible(a.node), a.node, a.name) < (b.running ? 0 : 1, eligible(b.node), b.node, b.name)
        }
        var first: [Key: ObservedContainer] = [:]
        first.reserveCapacity(all.count)
        var gangMembers: [Key: [ObservedContainer]] = [:]
        for c in all {
            let key = Key(deployment: c.deployment, replica: c.replica)
            if c.gangSize > 1 { gangMembers[key, default: []].append(c) }
            if let seen = first[key], !before(c, seen) { continue }
            first[key] = c
        }
        var previous: [Assignment] = []
        previous.reserveCapacity(first.count)
        for (key, c) in first {
            if c.gangSize > 1, let members = gangMembers[key] {
                var byRank: [Int: ObservedContainer] = [:]
                for m in members.sorted(by: before) where m.gangSize == c.gangSize && m.templateHash == c.templateHash && byRank[m.rank] == nil { byRank[m.rank] = m }
                let slices = byRank.keys.sorted().map { r in Slice(node: byRank[r]!.node, gpus: byRank[r]!.gpus, hostPort: byRank[r]!.hostPort) }
                previous.append(Assignment(deployment: c.deployment, replica: c.replica, slices: slices))
            } else {
                previous.append(Assignment(deployment: c.deployment, replica: c.replica, slices: [Slice(node: c.node, gpus: c.gpus, hostPort: c.hostPort)]))
            }
        }
        let lingeringSlices = lingering.values.flatMap { $0 }.map { Slice(node: $0.node, gpus: $0.gpus, hostPort: $0.hostPort) }
        var schedule = input.schedule(previous: previous, reserved: lingeringSlices)
        // A ready replica that must move (its GPU out of service, its node draining) but has no
        // room elsewhere keeps serving where it is (below): its port and GPUs are booked, so that
        // nothing else is placed on them while it does.
        let stranded = schedule.unplaced.compactMap { u -> Slice? in
            guard u.replica < (replicaCounts[u.deployment] ?? 0), let c = first[Key(deployment: u.deployment, replica: u.replica)],
                  c.gangSize == 1, isReady(c), moving(c) else { return nil }
            return Slice(node: c.node, gpus: c.gpus, hostPort: c.hostPort)
        }
        if !stranded.isEmpty { schedule = input.schedule(previous: previous, reserved: lingeringSlices + stranded) }

        var actions: [Action] = []
        var kept: [ObservedContainer] = []
        var wanted = Set<String>()  // ids of the observed containers the plan keeps (or removes itself)
        var progress: [DeploymentProgress] = []
        let assignmentsByDeployment = Dictionary(grouping: schedule.assignments, by: \.deployment)
        let unplacedByDeployment = Dictionary(grouping: schedule.unplaced, by: \.deployment)
        for request in input.deployments {
            let spec = request.spec
            let replicas = replicaCounts[request.name]!
            let template = templates[request.name]!
            let mine = byDeployment[request.name] ?? []
            let surge = spec.rollout.maxSurge.resolve(total: replicas, roundUp: true)
            let unavailable = spec.rollout.maxUnavailable.resolve(total: replicas, roundUp: false)
            // Neither surge nor unavailability allowed would freeze every rollout: allow one down.
            let minReady = replicas - max(unavailable, surge == 0 ? 1 : 0)
            let deadline = TimeInterval(spec.rollout.readyDeadlineSeconds)
            let rollingOut = mine.contains { $0.templateHash != template || moving($0) }
            let versionKey = "\(spec.model)@\(request.model.version)"
            let refusal = health.refusedVersions[versionKey]
            /// Why a new replica may not start on `node` yet: the version's files are not staged there.
            func unstaged(_ node: String) -> String? { health.unstaged[node]?[versionKey] }
            let late = mine.filter { $0.templateHash == template && !isReady($0) && $0.age(now: now) > deadline }
                .sorted { $0.replica < $1.replica }
            let halted = late.first.map { c in
                "replica \(c.replica) (\(c.name) on \(c.node)) not ready \(Int(c.age(now: now))) s after it started; the ready deadline is \(Int(deadline)) s"
            }
            var p = DeploymentProgress(name: request.name, desired: replicas, modelVersion: request.model.version, replicas: [],
                                       ready: 0, updated: 0, updatedReady: 0, rollingOut: rollingOut, halted: rollingOut ? halted : nil, blocked: nil)
            if !rollingOut, let halted { p.blocked = halted }
            /// A version whose artifacts have not verified holds the rollout, with its own reason.
            func refuse(_ why: String) {
                p.blocked = why
                p.blockedReason = .artifactsNotVerified
            }

            struct Slot {
                var assignment: Assignment
                var target: PlannedContainer
                var current: ObservedContainer?
                var others: [ObservedContainer]
                /// Readiness, looked up once.
                var currentReady: Bool
                var otherReady: Bool
            }
            var slots: [Slot] = []
            var gangs: [GangSlot] = []
            for a in (assignmentsByDeployment[request.name] ?? []).sorted(by: { $0.replica < $1.replica }) {
                guard a.slices.count == 1 else {
                    let members = a.slices.map { "\(nodeStates[$0.node]!.spec.address):\($0.hostPort)" }
                    let targets = a.slices.enumerated().map { rank, slice in
                        ContainerSpecBuilder.build(ReplicaPlacement(
                            deployment: request.name, spec: spec, model: request.model, replica: a.replica, node: slice.node,
                            nodeSpec: nodeStates[slice.node]!.spec, gpus: slice.gpus, hostPort: slice.hostPort, revision: revision,
                            gang: Gang(rank: rank, size: a.slices.count, members: members)), epoch: epoch, templateHash: template)
                    }
                    gangs.append(GangSlot(assignment: a, targets: targets, onSlot: mine.filter { $0.replica == a.replica }))
                    continue
                }
                let slice = a.slices[0]
                let node = nodeStates[slice.node]!
                let placement = ReplicaPlacement(deployment: request.name, spec: spec, model: request.model, replica: a.replica,
                                                 node: slice.node, nodeSpec: node.spec, gpus: slice.gpus, hostPort: slice.hostPort, revision: revision)
                let target = ContainerSpecBuilder.build(placement, epoch: epoch, templateHash: template)
                let onSlot = mine.filter { $0.replica == a.replica }
                let current = onSlot.first { $0.name == target.name && $0.node == slice.node }
                let others = onSlot.filter { $0.id != current?.id }
                slots.append(Slot(assignment: a, target: target, current: current, others: others,
                                  currentReady: isReady(current), otherReady: others.contains(where: isReady)))
            }
            let readyCount = slots.filter { $0.currentReady || $0.otherReady }.count
                + gangs.filter { g in g.onSlot.contains { $0.rank == 0 && isReady($0) } }.count
            p.ready = readyCount
            // What may be taken down counts sound replicas only.
            var budget = slots.filter { isSound($0.current) || $0.others.contains(where: isSound) }.count
                + gangs.filter { g in g.onSlot.contains { $0.rank == 0 && isSound($0) } }.count
            // Free replacements (nothing ready to lose) go first, so they never wait on the budget.
            slots.sort { s1, s2 in
                s1.otherReady != s2.otherReady ? !s1.otherReady : s1.assignment.replica < s2.assignment.replica
            }
            for s in slots {
                let slice = s.assignment.slices[0]
                let node = slice.node
                var phase: ReplicaStatus.Phase
                var message = ""
                var container = s.target.name
                var version = request.model.version
                if let current = s.current {
                    wanted.insert(current.id)
                    p.updated += s.assignment.replica < replicas ? 1 : 0
                    if s.currentReady {
                        phase = .ready
                        kept.append(current)
                        p.updatedReady += s.assignment.replica < replicas ? 1 : 0
                    } else if current.running {
                        let age = current.age(now: now)
                        phase = age > deadline ? .failing : .starting
                        message = current.state == "paused"
                            ? "container paused: it answers nothing (unpause it, or remove it and Berth makes a new one)"
                            : "health check \(spec.health.path) not answering 200 yet (\(Int(age)) s since it started)"
                        kept.append(current)
                    } else if current.state == "restarting" {
                        phase = .starting
                        message = "the engine is restarting it after it exited"
                    } else {
                        phase = .pending
                        message = "container \(current.state); starting it"
                        actions.append(.start(node: node, id: current.id, name: current.name))
                    }
                    for o in s.others {
                        if isReady(current) || !isReady(o) {
                            actions.append(.remove(node: o.node, id: o.id, name: o.name, reason: "replaced by \(current.name)"))
                        }
                        wanted.insert(o.id)
                    }
                } else if s.others.isEmpty, let refusal {
                    phase = .pending
                    message = "not started: \(refusal)"
                    refuse(refusal)
                } else if s.others.isEmpty, let staging = unstaged(node) {
                    phase = .staging
                    message = staging
                } else if s.others.isEmpty, !health.unseen.isEmpty {
                    phase = .pending
                    message = "waiting: \(health.unseen.sorted().joined(separator: ", ")) has not answered since this controller began leading; the replica may run there"
                } else if s.others.isEmpty {
                    phase = .pending
                    message = "creating"
                    actions.append(.create(node: node, container: s.target))
                } else {
                    let losesReady = s.others.contains(where: isReady)
                    let losesSound = s.others.contains(where: isSound)
                    // The old container that serves the slot: a ready one, on a node that may run replicas if any.
                    let serving = s.others.filter(isReady)
                    let old = serving.first { nodeStates[$0.node].map { $0.spec.role == .active && !$0.cordoned } ?? false }
                        ?? serving.first ?? s.others[0]
                    // Why the old one stays serving for now, if it does.
                    let keepOld: String? =
                        if let refusal { "kept: \(refusal)" }
                        else if let staging = unstaged(node) { "kept until its successor's files are on \(node): \(staging)" }
                        else if losesReady && p.halted != nil { "kept: the rollout is halted" }
                        else if losesReady && budget - (losesSound ? 1 : 0) < minReady { "waiting: replacing it now would leave fewer than \(minReady) ready" }
                        else { nil }
                    if let keepOld {
                        for o in s.others {
                            wanted.insert(o.id)
                            // A second old container of the slot (left on a node that failed and came
                            // back) goes even while the slot waits: one serves it.
                            if isReady(old) && o.id != old.id {
                                actions.append(.remove(node: o.node, id: o.id, name: o.name, reason: "a second container for replica \(o.replica); \(old.name) on \(old.node) serves it"))
                            }
                        }
                        phase = isReady(old) ? (old.templateHash == template ? .ready : .outdated) : .pending
                        container = old.name
                        version = old.modelVersion
                        message = keepOld
                        if let refusal { refuse(refusal) }
                        if isReady(old) { kept.append(old) }
                    } else {
                        if losesSound { budget -= 1 }
                        for o in s.others {
                            actions.append(.remove(node: o.node, id: o.id, name: o.name, reason: "replaced by \(s.target.name)"))
                            wanted.insert(o.id)
                        }
                        actions.append(.create(node: node, container: s.target))
                        phase = .pending
                        message = "replacing \(old.name)"
                    }
                }
                p.replicas.append(ReplicaStatus(slot: s.assignment.replica, node: node, gpus: slice.gpus, hostPort: slice.hostPort,
                                                container: container, modelVersion: version, phase: phase, message: message))
            }
            for g in gangs {
                var step = GangStep(targets: g.targets, onSlot: g.onSlot, isReady: isReady, now: now, deadline: deadline)
                // Every member's node must hold the files before any member starts.
                let staging = g.targets.lazy.compactMap { t in unstaged(t.placement.node).map { "\(t.placement.node): \($0)" } }.first
                step.plan(refusal: refusal ?? staging, keepOld: { losesReady in losesReady && (p.halted != nil || budget - 1 < minReady) })
                if refusal == nil, staging != nil, step.refused, step.phase == .pending { step.phase = .staging }
                if step.replacedReady { budget -= 1 }
                actions += step.actions
                wanted.formUnion(step.wanted)
                kept += step.kept
                if step.current && g.assignment.replica < replicas {
                    p.updated += 1
                    if step.phase == .ready { p.updatedReady += 1 }
                }
                if let refusal, step.refused { refuse(refusal) }
                let lead = g.assignment.slices[0]
                p.replicas.append(ReplicaStatus(slot: g.assignment.replica, node: lead.node, gpus: lead.gpus, hostPort: lead.hostPort,
                                                container: step.container ?? g.targets[0].name, modelVersion: step.version ?? request.model.version,
                                                phase: step.phase, message: step.message + (step.message.isEmpty ? "" : "; ")
                                                    + "gang of \(g.targets.count) over \(g.assignment.slices.map(\.node).joined(separator: "+")), led from \(lead.node)"))
            }
            for u in unplacedByDeployment[request.name] ?? [] {
                if u.replica >= replicas {
                    if minReady >= replicas {
                        p.blocked = "no room for a surge replica (\(u.reason)) and maxUnavailable allows no replica down"
                    }
                    continue
                }
                // A slot that cannot be placed again keeps the ready container it has on a node
                // that takes no placements (a standby, a node that rejoined as one, one not
                // answering), on a draining node, or on a GPU out of service: removing it would
                // take a serving replica for nothing.
                if let serving = mine.first(where: { $0.replica == u.replica && $0.rank == 0 && $0.gangSize == 1 && isReady($0) && (eligible($0.node) == 1 || moving($0)) }) {
                    wanted.insert(serving.id)
                    kept.append(serving)
                    p.ready += 1
                    p.replicas.append(ReplicaStatus(slot: u.replica, node: serving.node, gpus: serving.gpus, hostPort: serving.hostPort,
                                                    container: serving.name, modelVersion: serving.modelVersion, phase: .unschedulable,
                                                    message: "\(u.reason); \(serving.name) on \(serving.node) serves it meanwhile"))
                    continue
                }
                p.replicas.append(ReplicaStatus(slot: u.replica, node: nil, gpus: [], hostPort: nil, container: nil, modelVersion: nil,
                                                phase: .unschedulable, message: u.reason))
            }
            for c in lingering[request.name] ?? [] {
                wanted.insert(c.id)
                kept.append(c)
                p.replicas.append(ReplicaStatus(slot: c.replica, node: c.node, gpus: c.gpus, hostPort: c.hostPort, container: c.name,
                                                modelVersion: c.modelVersion, phase: .ready,
                                                message: "beyond the \(replicas) desired; serves until \(replicas) replica(s) are ready"))
            }
            p.replicas.sort { $0.slot < $1.slot }
            progress.append(p)
        }
        // Orphans: Berth's containers nobody wants, removed before anything is created.
        var orphans: [Action] = []
        var unwanted: [ObservedContainer] = []
        for observation in observed.values {
            for c in observation.containers where !wanted.contains(c.id) { unwanted.append(c) }
        }
        for c in unwanted.sorted(by: { ($0.node, $0.name) < ($1.node, $1.name) }) {
            let reason = switch replicaCounts[c.deployment] {
            case nil: "deployment \(c.deployment) is gone"
            case let count? where c.replica >= count: "replica \(c.replica) is beyond the \(count) desired (scale-down or a finished rollout's surge)"
            default: "not desired on this node"
            }
            orphans.append(.remove(node: c.node, id: c.id, name: c.name, reason: reason))
        }
        // Nothing can be done on a suspect node: its engine does not answer.
        let possible = orphans.isEmpty && health.suspect.isEmpty ? actions : (orphans + actions).filter { health.suspect[$0.node] == nil }
        return Plan(actions: possible, kept: kept, schedule: schedule, deployments: progress)
    }
}
