import BerthModel
import BerthReconciler
import BerthStore
import Foundation

/// Where a model's staged versions stand, node by node: what `berth model status`, `describe
/// model` and `doctor` show. Built from the desired state, the last stored status (where
/// replicas run, which nodes act as standbys) and the staging records.
public struct StagingReport: Sendable, Codable, Hashable {
    public struct Entry: Sendable, Codable, Hashable {
        public enum State: String, Sendable, Codable {
            case staged, staging, failed, purged
            /// No record, or one made for another list of files.
            case absent

            init(_ state: Staging.State) {
                switch state {
                case .staged: self = .staged
                case .staging: self = .staging
                case .failed: self = .failed
                case .purged: self = .purged
                }
            }
        }

        public var node: String
        public var role: String
        public var model: String
        public var version: String
        public var state: State
        /// Why the node must hold it (`serve`, `standby`, `keep`); nil when it need not.
        public var neededFor: String?
        public var bytesDone: Int64
        public var bytesTotal: Int64
        public var attempts: Int
        public var updatedAt: Date?
        public var detail: String
    }

    public var entries: [Entry]

    /// Entries a node needs but does not hold.
    public var missing: [Entry] { entries.filter { $0.neededFor != nil && $0.state != .staged } }

    /// The report for `model` (every model when nil), nodes in name order, versions oldest first.
    public static func read(_ store: StateStore, model: String? = nil) throws -> StagingReport {
        let desired = try store.objects().map(\.resource)
        let status = try store.fleetStatus()
        let rows = try store.stagings(model: model)
        return build(desired: desired, status: status, rows: rows, model: model)
    }

    public static func build(desired: [Resource], status: FleetStatus, rows: [Staging], model: String? = nil) -> StagingReport {
        let deployments = Dictionary(desired.compactMap { r in r.deployment.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        var placed: [String: Set<String>] = [:]
        for d in status.deployments {
            guard let spec = deployments[d.name] else { continue }
            for r in d.replicas {
                guard let node = r.node else { continue }
                placed[node, default: []].insert("\(spec.model)@\(r.modelVersion ?? spec.version)")
            }
        }
        var roles: [String: NodeSpec.Role] = [:]
        for r in desired {
            guard let spec = r.node else { continue }
            let seen = status.nodes.first { $0.name == r.name }
            roles[r.name] = seen?.promoted == true ? .active : seen?.rejoinedAsStandby == true ? .standby : spec.role
        }
        let needs = StagingPlan.needs(desired: desired, placed: placed, roles: roles)
        let byKey = Dictionary(rows.map { ("\($0.node)|\($0.key)", $0) }, uniquingKeysWith: { a, _ in a })
        var entries: [Entry] = []
        for r in desired.sorted(by: { $0.name < $1.name }) {
            guard let spec = r.model, model == nil || r.name == model else { continue }
            for v in spec.versions where v.isStaged {
                for node in roles.keys.sorted() {
                    let row = byKey["\(node)|\(r.name)@\(v.version)"]
                    let current = row.map { $0.fingerprint == Staging.fingerprint(v) } ?? false
                    let state: Entry.State = current ? Entry.State(row!.state) : .absent
                    let need = needs[node]?.first { $0.model == r.name && $0.version.version == v.version }
                    entries.append(Entry(
                        node: node, role: roles[node]?.rawValue ?? "", model: r.name, version: v.version, state: state, neededFor: need?.why.rawValue,
                        bytesDone: current ? row!.bytesDone : 0, bytesTotal: v.artifactBytes, attempts: current ? row!.attempts : 0,
                        updatedAt: row?.updatedAt, detail: current ? row!.detail : row == nil ? "" : "recorded for another list of files"))
                }
            }
        }
        return StagingReport(entries: entries)
    }
}
