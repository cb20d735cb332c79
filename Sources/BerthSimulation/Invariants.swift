import BerthModel
import BerthReconciler
import BerthRuntime
import BerthStore
import Foundation

/// The properties every step must keep, and the state they need between steps.
///
/// - **fencing**: no engine action by a controller that does not hold the lease;
/// - **one ready container per slot**: never two ready containers of one version for one replica
///   slot left in place past a pass or two;
/// - **GPU exclusivity**: never two running containers on one GPU;
/// - **rollout availability**: during a rollout, never fewer ready replicas than the rollout
///   policy allows (`replicas − maxUnavailable`, at least one down when `maxSurge` is 0), unless a
///   fault took replicas or nodes away since it began;
/// - **gateway**: every in-service member is a ready replica (or one that stopped answering less
///   than a health check interval ago), and no container is removed while
///   nginx may still send it traffic;
/// - **convergence**: once faults stop, the fleet reaches the desired state.
struct Invariants {
    struct Rollout {
        var began: Int
        var replicas: Int
    }

    var lastDisturbance = -1_000
    var rollouts: [String: Rollout] = [:]
    /// Slots with two ready containers of one version, by key, with the passes that saw them.
    var doubled: [String: Int] = [:]
    var found: Violation?
    var lastPlanNoOp = false
    /// Why the leader's last pass found each deployment's rollout blocked (no room to surge).
    var blocked: [String: String] = [:]
    /// Containers (name@node) the leader tried to remove in this step, sent or held back.
    var removing: Set<String> = []

    mutating func disturb(_ sim: Simulation) { lastDisturbance = sim.step }

    /// An operator change: a rollout starting from a settled deployment is watched.
    mutating func changed(_ sim: Simulation) {
        for d in sim.fleet.deployments {
            let truth = Self.ready(sim, d.name)
            if let r = rollouts[d.name], r.replicas == d.replicas { continue }
            rollouts[d.name] = nil
            let versions = Set(truth.map(\.version))
            let settledBefore = Set(truth.map(\.slot)).count >= d.replicas && versions.count == 1
            if settledBefore && versions.first != "v\(d.version)" { rollouts[d.name] = Rollout(began: sim.step, replicas: d.replicas) }
        }
    }

    /// Ready containers of a deployment, by slot and version: on engines that are up, or hung
    /// (a hung daemon's containers go on serving).
    static func ready(_ sim: Simulation, _ deployment: String) -> [(slot: Int, version: String, node: String)] {
        sim.engines.filter { $0.health == .up || $0.health == .hung }.flatMap { e in
            e.truth.filter { $0.ready && $0.labels[BerthLabel.deployment] == deployment && ($0.labels[BerthLabel.gangRank] ?? "0") == "0" }
                .map { (Int($0.labels[BerthLabel.replica] ?? "") ?? -1, $0.labels[BerthLabel.modelVersion] ?? "", e.node) }
        }
    }

    mutating func afterPass(_ sim: Simulation, controller: String, epoch: Int64, fenceOpen: Bool, pass: Reconciler.Pass, synced: SyncLog) {
        guard found == nil else { return }
        if fenceOpen {
            lastPlanNoOp = pass.plan.isNoOp && pass.deferred.isEmpty
            blocked = Dictionary(pass.plan.deployments.compactMap { d in d.blocked.map { (d.name, $0) } }, uniquingKeysWith: { a, _ in a })
            for case .remove(let node, _, let name, _) in pass.plan.actions { removing.insert("\(name)@\(node)") }
        }
        // Fencing: every mutating call in this pass came from this controller, holding the lease.
        for e in sim.engines {
            for call in e.takeCalls() {
                if call.caller != controller || !fenceOpen {
                    found = Violation(step: sim.step, invariant: "fencing",
                                      detail: "\(call.caller) did \(call.operation) \(call.target) on \(call.node) without the lease (held by \(sim.lease?.holder ?? "nobody"), epoch \(sim.lease?.epoch ?? 0); it believed epoch \(epoch))")
                    return
                }
            }
        }
        guard synced.happened else { return }
        // Gateway: in-service members answer — or stopped answering too recently to have spent
        // their grace (`ProbeMemory.grace` from their last 200, and one more interval for the
        // passes in between); nothing nginx may still send to is removed.
        let check = HealthCheck()
        let probeInterval = ProbeMemory.grace(check) + .seconds(check.intervalSeconds)
        for endpoint in synced.inService {
            guard let c = synced.byEndpoint[endpoint], let e = sim.engines.first(where: { $0.node == c.node }),
                  e.truth.contains(where: { $0.name == c.name && ($0.ready || ($0.running && ($0.stalledFor.map { $0 < probeInterval } ?? false))) }) else {
                found = Violation(step: sim.step, invariant: "gateway member ready", detail: "\(endpoint) is in service but its replica is not ready")
                return
            }
        }
        let observed = Dictionary(pass.observed.values.flatMap(\.containers).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let addresses = Dictionary(uniqueKeysWithValues: sim.engines.map { ($0.node, $0.address) })
        for r in pass.results where r.error == nil {
            guard case .remove(let node, let id, let name, let reason) = r.action, let c = observed[id] else { continue }
            let endpoint = GatewayMembership.endpoint(address: addresses[node] ?? "", port: c.hostPort)
            if synced.servingBefore.contains(endpoint) && c.rank == 0 && synced.byEndpoint[endpoint]?.id == id {
                found = Violation(step: sim.step, invariant: "no removal under traffic",
                                  detail: "\(name) on \(node) removed (\(reason)) while nginx still sent traffic to \(endpoint)")
                return
            }
        }
    }

    mutating func afterStep(_ sim: Simulation) async -> Violation? {
        if let found { return found }
        let up = sim.engines.filter { $0.health == .up }.map { ($0, $0.truth) }
        // GPU exclusivity.
        for (e, truth) in up {
            var owner: [Int: String] = [:]
            for c in truth where c.running {
                for g in (c.labels[BerthLabel.gpus] ?? "").split(separator: ",").compactMap({ Int($0) }) {
                    if let other = owner[g] {
                        return Violation(step: sim.step, invariant: "GPU exclusivity", detail: "GPU \(g) of \(e.node) runs \(other) and \(c.name)")
                    }
                    owner[g] = c.name
                }
            }
        }
        // One ready container per slot and version, past three passes of a leader (none may
        // act while the lease waits out a dead leader's term).
        var seen: [String: [String]] = [:]
        for (e, truth) in up {
            for c in truth where c.ready {
                let key = [c.labels[BerthLabel.deployment], c.labels[BerthLabel.replica], c.labels[BerthLabel.gangRank] ?? "0", c.labels[BerthLabel.templateHash]]
                    .map { $0 ?? "" }.joined(separator: "/")
                seen[key, default: []].append("\(c.name)@\(e.node)")
            }
        }
        let doubledNow = seen.filter { $0.value.count > 1 }
        doubled = doubled.filter { doubledNow[$0.key] != nil }
        defer { removing = [] }
        for (key, names) in doubledNow.sorted(by: { $0.key < $1.key }) {
            // A pass that asked for one of them to go did its part (the engine may refuse).
            if sim.leaderActed && names.allSatisfy({ !removing.contains($0) }) { doubled[key, default: 0] += 1 }
            if doubled[key, default: 0] > 3 {
                return Violation(step: sim.step, invariant: "one ready container per slot",
                                 detail: "slot \(key) has \(names.sorted().joined(separator: " and ")) ready through \(doubled[key]!) leader passes")
            }
        }
        // Rollout availability, unless a fault took replicas away since the rollout began.
        for d in sim.fleet.deployments {
            guard let r = rollouts[d.name] else { continue }
            let ready = Self.ready(sim, d.name)
            // Every ready replica serves, a rollout's surge replicas (slots past the count) included.
            let slots = Set(ready.map(\.slot))
            if ready.count == d.replicas && ready.allSatisfy({ $0.version == "v\(d.version)" }) {
                rollouts[d.name] = nil  // done
                continue
            }
            guard lastDisturbance < r.began, r.replicas == d.replicas else { continue }
            if slots.count < sim.fleet.minReady(d) {
                return Violation(step: sim.step, invariant: "rollout availability",
                                 detail: "\(d.name) rolling to v\(d.version) since step \(r.began) has \(slots.count) ready replica(s); at least \(sim.fleet.minReady(d)) of \(d.replicas) must stay ready (maxSurge \(d.maxSurge), maxUnavailable \(d.maxUnavailable))")
            }
        }
        return nil
    }

    /// After the last step: the fleet is what was asked for.
    func converged(_ sim: Simulation) -> Violation? {
        func fail(_ why: String) -> Violation { Violation(step: sim.step, invariant: "convergence", detail: why) }
        guard sim.leader != nil else { return fail("no controller holds the lease (stored: \(sim.lease.map { "\($0.holder) at epoch \($0.epoch)" } ?? "none"))") }
        for d in sim.fleet.deployments {
            let ready = Self.ready(sim, d.name)
            let all = sim.engines.flatMap { e in e.truth.filter { $0.labels[BerthLabel.deployment] == d.name }.map { "\($0.name)@\(e.node)" } }
            let slots = Set(ready.map(\.slot))
            // A rollout blocked for want of room (the replicas moved around during the faults and
            // no node has a surge replica's GPUs free, with maxUnavailable 0) is a designed end:
            // every slot serves on the old version and the status says why.
            if let why = blocked[d.name], slots == Set(0..<d.replicas), all.count == d.replicas {
                sim.log("\(d.name) ends blocked, every replica serving: \(why)")
                continue
            }
            guard ready.count == d.replicas, slots == Set(0..<d.replicas), ready.allSatisfy({ $0.version == "v\(d.version)" }), all.count == d.replicas else {
                return fail("\(d.name) wants \(d.replicas) ready on v\(d.version); ready: \(ready.map { "\($0.slot):\($0.version)@\($0.node)" }.sorted().joined(separator: " ")); containers: \(all.sorted().joined(separator: " "))")
            }
        }
        guard lastPlanNoOp else { return fail("the leader's last pass still had work to do") }
        return nil
    }
}
