import ArgumentParser
import BerthControl
import BerthModel
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
        let store = try reportingErrorsReturning { try state.openExisting() }!
        let current = try reportingErrorsReturning { try store.objects().map(\.resource) }!
        let plan = try reportingErrorsReturning { try RollbackPlan.resolve(target, store: store, current: current) }!

        let text = StateDiff.unified(old: current, new: plan.resources, oldLabel: "now", newLabel: plan.label)
        if text.isEmpty {
            Console.print("nothing to roll back: the desired state already equals \(plan.label)")
            return
        }
        Console.print(text)
        let problems = await plan.problems(store: store, checkImages: !skipImageCheck)
        for p in problems { Console.note("not feasible: \(p)") }
        if dryRun {
            Console.print("dry run: nothing stored" + (problems.isEmpty ? "; the target passed every check" : "; \(problems.count) check(s) failed"))
            if !problems.isEmpty { throw Exit.infeasible }
            return
        }
        if !problems.isEmpty && !force {
            Console.error("rollback to \(plan.label) refused: \(problems.count) check(s) failed; fix them, or --force")
            throw Exit.infeasible
        }
        let result = try reportingErrorsReturning {
            try store.apply(plan.input, options: plan.options(author: author ?? Identity.currentUser, message: message))
        }!
        for change in result.changes where change.action != .unchanged { Console.print("\(change.key) \(change.action.rawValue)") }
        Console.print(result.revision.map { "revision \($0) stored: rollback to \(plan.label)" } ?? "no changes")
    }

    /// What the flags ask to return to (`validate` has checked they make one target).
    var target: RollbackPlan.Target {
        if let object, let key = ObjectKey(reference: object) { return .object(key, revision: toRevision) }
        if let toRevision { return .revision(toRevision) }
        if let toTime, let time = TimeArgument.parse(toTime) { return .time(time) }
        return .snapshot(toSnapshot ?? "")
    }
}
