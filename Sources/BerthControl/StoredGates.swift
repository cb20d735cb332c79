import BerthModel
import BerthReconciler
import BerthStore

/// What a pass takes from the store besides the desired state: operators' holds on nodes, and the
/// served model versions that may not start because their artifacts have not verified.
public struct StoredGates: Sendable {
    public var holds: [String: NodeHold] = [:]
    /// `model@version` → every artifact problem, joined.
    public var refusedVersions: [String: String] = [:]

    public init(holds: [String: NodeHold] = [:], refusedVersions: [String: String] = [:]) {
        self.holds = holds
        self.refusedVersions = refusedVersions
    }

    /// Reads both; a read that fails leaves that part empty (the pass goes on, as it would
    /// without holds) and is reported in `problems`.
    public static func read(_ store: StateStore, desired: [Resource]) -> (gates: StoredGates, problems: [String]) {
        var gates = StoredGates()
        var problems: [String] = []
        do { gates.holds = try store.nodeHolds() } catch { problems.append("\(error)") }
        let models = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.model.map { (r.name, $0) } })
        for r in desired {
            guard let d = r.deployment, d.replicas > 0, let version = models[d.model]?.version(d.version), !version.artifacts.isEmpty else { continue }
            let key = "\(d.model)@\(d.version)"
            guard gates.refusedVersions[key] == nil else { continue }
            do {
                let found = try store.verificationProblems(model: d.model, version: version)
                if !found.isEmpty { gates.refusedVersions[key] = found.joined(separator: "; ") }
            } catch {
                gates.refusedVersions[key] = "\(key): verification results cannot be read: \(error)"
            }
        }
        return (gates, problems)
    }

    /// The holds and refusals as a pass's verdicts (a promotion request is the controller's to carry out).
    public var health: FleetHealth {
        var h = FleetHealth()
        apply(to: &h)
        return h
    }

    public func apply(to health: inout FleetHealth) {
        for (name, hold) in holds {
            if hold.cordoned { health.cordoned.insert(name) }
            if hold.draining { health.draining.insert(name) }
        }
        health.refusedVersions.merge(refusedVersions) { a, _ in a }
    }
}
