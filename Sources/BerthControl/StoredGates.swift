import BerthModel
import BerthReconciler
import BerthStore

/// What a pass takes from the store besides the desired state: operators' holds on nodes, GPUs out
/// of service, and the served model versions that may not start because their artifacts have not
/// verified.
public struct StoredGates: Sendable {
    public var holds: [String: NodeHold] = [:]
    /// GPUs out of service, by node.
    public var gpuHolds: [String: [GPUHold]] = [:]
    /// `model@version` → every artifact problem, joined.
    public var refusedVersions: [String: String] = [:]

    /// Node → `model@version` → why that staged version's files are not usable there yet.
    public var unstaged: [String: [String: String]] = [:]

    public init(holds: [String: NodeHold] = [:], refusedVersions: [String: String] = [:], unstaged: [String: [String: String]] = [:]) {
        self.holds = holds
        self.refusedVersions = refusedVersions
        self.unstaged = unstaged
    }

    /// Reads both; a read that fails leaves that part empty (the pass goes on, as it would
    /// without holds) and is reported in `problems`.
    public static func read(_ store: StateStore, desired: [Resource]) -> (gates: StoredGates, problems: [String]) {
        var gates = StoredGates()
        var problems: [String] = []
        do { gates.holds = try store.nodeHolds() } catch { problems.append("\(error)") }
        do { gates.gpuHolds = Dictionary(grouping: try store.gpuHolds(), by: \.node) } catch { problems.append("\(error)") }
        let models = Dictionary(uniqueKeysWithValues: desired.compactMap { r in r.model.map { (r.name, $0) } })
        var stagings: [String: Staging]?
        for r in desired {
            guard let d = r.deployment, d.replicas > 0, let version = models[d.model]?.version(d.version), !version.artifacts.isEmpty else { continue }
            let key = "\(d.model)@\(d.version)"
            // A staged version is checked per node: its files are hashed as they are written there.
            if version.isStaged {
                if stagings == nil {
                    do { stagings = Dictionary(try store.stagings().map { ("\($0.node)|\($0.key)", $0) }, uniquingKeysWith: { a, _ in a }) } catch {
                        stagings = [:]
                        problems.append("\(error)")
                    }
                }
                for node in desired where node.kind == .node {
                    let row = stagings?["\(node.name)|\(key)"]
                    if let why = unstagedReason(row, version: version, node: node.name) { gates.unstaged[node.name, default: [:]][key] = why }
                }
                continue
            }
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

    /// Why a staged version may not start on `node` per its staging row; nil when it is staged.
    static func unstagedReason(_ row: Staging?, version: ModelVersion, node: String) -> String? {
        let size = ArtifactStaging.size(version.artifactBytes)
        guard let row, row.fingerprint == Staging.fingerprint(version) else { return "waiting for its files (\(size)) to be staged on \(node)" }
        switch row.state {
        case .staged: return nil
        case .staging: return row.detail.isEmpty ? "staging its files (\(size)) on \(node)" : row.detail
        case .failed: return "staging its files (\(size)) on \(node) failed (attempt \(row.attempts)): \(row.detail)"
        case .purged: return "its files (\(size)) were purged from \(node); staging them again"
        }
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
        for (node, gpus) in gpuHolds { health.outOfServiceGPUs[node, default: []].formUnion(gpus.map(\.gpu)) }
        health.refusedVersions.merge(refusedVersions) { a, _ in a }
        health.unstaged.merge(unstaged) { a, b in a.merging(b) { x, _ in x } }
    }
}
