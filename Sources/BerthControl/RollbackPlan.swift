import BerthDocker
import BerthModel
import BerthScheduler
import BerthStore
import Foundation

/// A rollback resolved against the state: the whole desired state to return to, how to name it,
/// the checks it must pass, and what storing it means. `berth rollback` parses, calls and prints.
public struct RollbackPlan: Sendable {
    /// What to return to.
    public enum Target: Sendable, Hashable {
        /// One object, to its state at `revision` (nil: before its last change).
        case object(ObjectKey, revision: Int64?)
        /// The whole desired state at a revision,
        case revision(Int64)
        /// in force at a time,
        case time(Date)
        /// or recorded in a snapshot.
        case snapshot(String)
    }

    /// The whole desired state after the rollback, sorted by key.
    public var resources: [Resource]
    /// "revision 12", "deployment/chat at revision 4", "snapshot 20261206-0300 (revision 9)".
    public var label: String
    /// The one object rolled back (nil: the whole desired state).
    public var object: ObjectKey?
    /// Objects a one-object rollback deletes (it did not exist at the revision).
    public var deleting: Set<ObjectKey>

    /// Resolves `target` against `store`, whose current desired state is `current`. Throws
    /// `NotFound` for a revision, time, object history or snapshot that is not there.
    public static func resolve(_ target: Target, store: StateStore, current: [Resource]) throws -> RollbackPlan {
        switch target {
        case .object(let key, let revision):
            let revisions = try store.revisions(changing: key)
            guard let last = revisions.first else { throw NotFound(message: "\(key) has no history in \(store.path)") }
            let at = revision ?? (last - 1)
            if let revision, try store.revision(revision) == nil { throw NotFound(message: "revision \(revision) does not exist") }
            let old = at > 0 ? try store.object(key, at: at) : nil
            var resources = current.filter { $0.key != key }
            if let old { resources.append(old) }
            return RollbackPlan(resources: resources.sorted { $0.key < $1.key }, label: "\(key) at revision \(at)", object: key,
                                deleting: old == nil ? [key] : [])
        case .revision(let revision):
            guard try store.revision(revision) != nil else { throw NotFound(message: "revision \(revision) does not exist in \(store.path)") }
            return RollbackPlan(resources: try store.state(at: revision), label: "revision \(revision)", object: nil, deleting: [])
        case .time(let time):
            guard let revision = try store.revision(at: time), let id = revision.id else {
                throw NotFound(message: "no revision was stored by \(UTCTime.text(time))")
            }
            return RollbackPlan(resources: try store.state(at: id), label: "revision \(id) (in force at \(UTCTime.text(time)))", object: nil, deleting: [])
        case .snapshot(let id):
            let snapshot = try SnapshotStore(statePath: store.path).open(id)
            return RollbackPlan(resources: try snapshot.store.state(at: snapshot.record.revision),
                                label: "snapshot \(snapshot.record.id) (revision \(snapshot.record.revision))", object: nil, deleting: [])
        }
    }

    /// The deployments the rollback can affect: all of them for the whole state or a node
    /// (capacity), the deployment itself, or those serving a rolled-back model; nil means all.
    public var focus: Set<String>? {
        guard let object else { return nil }
        switch object.kind {
        case .node: return nil
        case .deployment: return [object.name]
        case .model: return Set(resources.filter { $0.deployment?.model == object.name }.map(\.name))
        case .gateway: return []
        }
    }

    /// What the rollback stores: the whole target (pruning the rest), or just the one object.
    public var input: [LoadedResource] {
        resources.filter { object == nil || $0.key == object }.map { LoadedResource(resource: $0) }
    }

    /// The apply that stores it, as a revision of origin `rollback`.
    public func options(author: String, message: String?) -> ApplyOptions {
        var options = ApplyOptions(author: author, message: message ?? "rollback to \(label)", prune: object == nil, origin: .rollback)
        options.deleting = deleting
        return options
    }

    /// What keeps the target from running, concerning the `focus` deployments only (a one-object
    /// rollback is not blamed for what was already wrong elsewhere): replicas that do not fit on
    /// the GPUs, artifacts of served versions that have not verified, and (with `checkImages`)
    /// images neither on an active node nor pullable.
    public func problems(store: StateStore, checkImages: Bool) async -> [String] {
        let focus = focus
        var problems: [String] = []
        let plan = FleetInput(resources).schedule()
        for u in plan.unplaced where focus?.contains(u.deployment) ?? true {
            problems.append("deployment/\(u.deployment) replica \(u.replica) \(u.reason)")
        }
        let models = Dictionary(uniqueKeysWithValues: resources.compactMap { r in r.model.map { (r.name, $0) } })
        var served: [(model: String, version: ModelVersion)] = []
        for r in resources {
            guard let d = r.deployment, d.replicas > 0, focus?.contains(r.name) ?? true, let v = models[d.model]?.version(d.version) else { continue }
            if !served.contains(where: { $0.model == d.model && $0.version.version == v.version }) { served.append((d.model, v)) }
        }
        for (model, version) in served {
            problems += (try? store.verificationProblems(model: model, version: version)) ?? []
        }
        if checkImages {
            let engines = resources.compactMap { r in r.node.flatMap { $0.role == .active ? (r.name, $0.engine) : nil } }
            for image in Set(served.map(\.version.image)).sorted() {
                if let problem = await ImageAvailability.problem(with: image, engines: engines) { problems.append(problem) }
            }
        }
        return problems
    }
}
