import ArgumentParser
import BerthDocker
import BerthModel
import BerthScheduler
import BerthStore
import Foundation

struct Rollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Return an object, or the whole fleet, to an earlier desired state.",
        discussion: """
            berth rollback deployment/NAME [--to-revision N]     (default: the object's state before its last change)
            berth rollback --all --to-revision N | --to-snapshot ID | --to-time TIME

            A rollback stores a new revision equal to the target; history is never rewritten, and the \
            controller rolls it out like any change. First the target is checked: every replica must \
            fit on the GPUs, every artifact of the model versions it serves must have verified \
            (`berth model verify`), and every image must be on a node or pullable. What is missing is \
            listed and nothing is stored (exit 5) unless --force. --dry-run shows the diff and the checks.
            """)

    @Argument(help: ArgumentHelp("The object to roll back, e.g. deployment/chat.", valueName: "kind/name"))
    var object: String?

    @Flag(help: "Roll back the whole desired state.")
    var all = false

    @Option(help: "The revision to return to.")
    var toRevision: Int64?

    @Option(help: "The snapshot to return to (see `berth snapshot list`).")
    var toSnapshot: String?

    @Option(help: ArgumentHelp("Return to the desired state in force at this time.", discussion: TimeArgument.help))
    var toTime: String?

    @Flag(help: "Show the diff and the checks; store nothing.")
    var dryRun = false

    @Flag(help: "Store the rollback even when checks fail.")
    var force = false

    @Flag(help: "Do not ask the nodes' engines and registries about images.")
    var skipImageCheck = false

    @Option(name: .shortAndLong, help: "Why; kept in history (default: what was rolled back to).")
    var message: String?

    @Option(help: ArgumentHelp("Who rolls back; default the person behind sudo, else $USER.", valueName: "name"))
    var author: String?

    @OptionGroup var state: StateOptions

    func validate() throws {
        let targets = [toRevision != nil, toSnapshot != nil, toTime != nil].filter { $0 }.count
        switch (object, all) {
        case (nil, false): throw ValidationError("name an object (e.g. deployment/chat) or give --all")
        case (_?, true): throw ValidationError("give either an object or --all, not both")
        case (let o?, false):
            if ObjectKey(reference: o) == nil { throw ValidationError("\"\(o)\" is not KIND/NAME (e.g. deployment/chat)") }
            if toSnapshot != nil || toTime != nil { throw ValidationError("an object rolls back with --to-revision only") }
        case (nil, true):
            if targets != 1 { throw ValidationError("--all needs exactly one of --to-revision, --to-snapshot, --to-time") }
        }
        if let toTime, TimeArgument.parse(toTime) == nil { throw ValidationError("--to-time \"\(toTime)\" is not \(TimeArgument.help)") }
    }

    func run() async throws {
        let store = try reportingErrorsReturning { try StateStore.open(path: state.path, create: false) }!
        let current = try reportingErrorsReturning { try store.objects().map(\.resource) }!
        let (target, label, deleting) = try reportingErrorsReturning { try resolveTarget(store, current: current) }!

        let text = StateDiff.unified(old: current, new: target, oldLabel: "now", newLabel: label)
        if text.isEmpty {
            Console.print("nothing to roll back: the desired state already equals \(label)")
            return
        }
        Console.print(text)
        let problems = await RollbackChecks.problems(target: target, focus: focus(target), store: store, checkImages: !skipImageCheck)
        for p in problems { Console.note("not feasible: \(p)") }
        if dryRun {
            Console.print("dry run: nothing stored" + (problems.isEmpty ? "; the target passed every check" : "; \(problems.count) check(s) failed"))
            if !problems.isEmpty { throw Exit.infeasible }
            return
        }
        if !problems.isEmpty && !force {
            Console.error("rollback to \(label) refused: \(problems.count) check(s) failed; fix them, or --force")
            throw Exit.infeasible
        }
        // --all stores the whole target; one object stores just that object (or deletes it).
        let key = object.flatMap(ObjectKey.init(reference:))
        let input = target.filter { all || $0.key == key }.map { LoadedResource(resource: $0) }
        var options = ApplyOptions(author: author ?? Identity.currentUser, message: message ?? "rollback to \(label)", prune: all, origin: .rollback)
        options.deleting = deleting
        let result = try reportingErrorsReturning { try store.apply(input, options: options) }!
        for change in result.changes where change.action != .unchanged { Console.print("\(change.key) \(change.action.rawValue)") }
        Console.print(result.revision.map { "revision \($0) stored: rollback to \(label)" } ?? "no changes")
    }

    /// The deployments a rollback can affect: all of them for --all or a node (capacity), the
    /// deployment itself, or those serving a rolled-back model; nil means all.
    func focus(_ target: [Resource]) -> Set<String>? {
        guard let object, let key = ObjectKey(reference: object) else { return nil }
        switch key.kind {
        case .node: return nil
        case .deployment: return [key.name]
        case .model: return Set(target.filter { $0.deployment?.model == key.name }.map(\.name))
        case .gateway: return []
        }
    }

    /// The whole desired state to return to, how to name it, and what a one-object rollback deletes.
    func resolveTarget(_ store: StateStore, current: [Resource]) throws -> ([Resource], String, Set<ObjectKey>) {
        if let object, let key = ObjectKey(reference: object) {
            let revisions = try store.revisions(changing: key)
            guard let last = revisions.first else { throw NotFound(message: "\(key) has no history in \(state.path)") }
            let at = toRevision ?? (last - 1)
            if let toRevision, try store.revision(toRevision) == nil { throw NotFound(message: "revision \(toRevision) does not exist") }
            let old = at > 0 ? try store.object(key, at: at) : nil
            var target = current.filter { $0.key != key }
            if let old { target.append(old) }
            return (target.sorted { $0.key < $1.key }, "\(key) at revision \(at)", old == nil ? [key] : [])
        }
        if let toRevision {
            guard try store.revision(toRevision) != nil else { throw NotFound(message: "revision \(toRevision) does not exist in \(state.path)") }
            return (try store.state(at: toRevision), "revision \(toRevision)", [])
        }
        if let toTime, let time = TimeArgument.parse(toTime) {
            guard let revision = try store.revision(at: time) else {
                throw NotFound(message: "no revision was stored by \(HistoryRendering.time(time))")
            }
            return (try store.state(at: revision.id!), "revision \(revision.id!) (in force at \(HistoryRendering.time(time)))", [])
        }
        let snapshot = try SnapshotStore(statePath: state.path).open(toSnapshot!)
        return (try snapshot.store.state(at: snapshot.record.revision), "snapshot \(snapshot.record.id) (revision \(snapshot.record.revision))", [])
    }
}

/// The checks a rollback target must pass.
enum RollbackChecks {
    /// Problems of the target that concern the `focus` deployments (all when nil): a one-object
    /// rollback is not blamed for what was already wrong elsewhere.
    static func problems(target: [Resource], focus: Set<String>?, store: StateStore, checkImages: Bool) async -> [String] {
        var problems: [String] = []
        let plan = FleetInput(target).schedule()
        for u in plan.unplaced where focus?.contains(u.deployment) ?? true {
            problems.append("deployment/\(u.deployment) replica \(u.replica) \(u.reason)")
        }
        let models = Dictionary(uniqueKeysWithValues: target.compactMap { r in r.model.map { (r.name, $0) } })
        var served: [(model: String, version: ModelVersion)] = []
        for r in target {
            guard let d = r.deployment, d.replicas > 0, focus?.contains(r.name) ?? true, let v = models[d.model]?.version(d.version) else { continue }
            if !served.contains(where: { $0.model == d.model && $0.version.version == v.version }) { served.append((d.model, v)) }
        }
        for (model, version) in served {
            problems += (try? store.verificationProblems(model: model, version: version)) ?? []
        }
        if checkImages {
            let engines = target.compactMap { r in r.node.flatMap { $0.role == .active ? (r.name, $0.engine) : nil } }
            for image in Set(served.map(\.version.image)).sorted() {
                if let problem = await ImageAvailability.problem(with: image, engines: engines) { problems.append(problem) }
            }
        }
        return problems
    }
}
