import ArgumentParser
import BerthModel
import BerthStore
import Foundation

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List revisions of the desired state, newest first.",
        discussion: "With KIND/NAME, only the revisions that changed that object (deleted objects included).",
        subcommands: [List.self, Show.self, Compare.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List revisions, newest first (the default).")

        @Argument(help: ArgumentHelp("Only revisions that changed this object, e.g. deployment/chat.", valueName: "kind/name"))
        var object: String?

        @Option(help: "Show at most this many revisions.")
        var limit: Int = 20

        @Option(name: .shortAndLong, help: "Output format: table or json (with --at: yaml or json).")
        var output: OutputFormat = .table

        @Option(help: ArgumentHelp("Print the whole desired state in force at this time instead.", discussion: TimeArgument.help, valueName: "time"))
        var at: String?

        @OptionGroup var state: StateOptions

        func validate() throws {
            if let at, TimeArgument.parse(at) == nil {
                throw ValidationError("--at \"\(at)\" is not a time; expected \(TimeArgument.help)")
            }
            if let object, ObjectKey(reference: object) == nil {
                throw ValidationError("\"\(object)\" is not KIND/NAME (e.g. deployment/chat); kinds: \(ResourceKind.acceptedSpellings)")
            }
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            try reportingErrors {
                guard let store = try state.openForReading() else { return }
                if let at, let time = TimeArgument.parse(at) {
                    guard let revision = try store.revision(at: time) else {
                        throw NotFound(message: "no revision was stored by \(HistoryRendering.time(time)); the first is later")
                    }
                    var resources = try store.state(at: revision.id!)
                    if let key = object.flatMap(ObjectKey.init(reference:)) { resources = resources.filter { $0.key == key } }
                    Console.print(try HistoryRendering.state(resources, revision: revision, format: output == .json ? .json : .yaml))
                    return
                }
                let key = object.flatMap(ObjectKey.init(reference:))
                let revisions = try store.history(of: key, limit: limit)
                switch output {
                case .json, .yaml:
                    Console.print(HistoryRendering.json(revisions))
                case .table:
                    if revisions.isEmpty {
                        Console.note(key.map { "no revision changed \($0)" } ?? "no revisions yet")
                        return
                    }
                    Console.print(HistoryRendering.table(revisions, focus: key))
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the whole desired state at a revision, as manifests `berth apply` accepts.")

        @Argument(help: "Revision number.")
        var revision: Int64

        @Option(name: .shortAndLong, help: "Output format: yaml or json.")
        var output: OutputFormat = .yaml

        @OptionGroup var state: StateOptions

        func run() throws {
            try reportingErrors {
                guard let store = try state.openForReading(), let record = try store.revision(revision) else {
                    throw NotFound(message: "revision \(revision) does not exist in \(state.path)")
                }
                let resources = try store.state(at: revision)
                Console.print(try HistoryRendering.state(resources, revision: record, format: output))
            }
        }
    }

    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Unified diff of the whole desired state at two revisions, object by object.",
            discussion: "Exit status: 0 when equal, 1 when different, as `berth diff`.")

        @Argument(help: "The older revision.")
        var from: Int64

        @Argument(help: "The newer revision.")
        var to: Int64

        @OptionGroup var state: StateOptions

        func run() throws {
            var different = false
            try reportingErrors {
                guard let store = try state.openForReading() else { throw NotFound(message: "no state at \(state.path)") }
                for r in [from, to] where try store.revision(r) == nil {
                    throw NotFound(message: "revision \(r) does not exist in \(state.path)")
                }
                let text = StateDiff.unified(oldDocuments: try store.documents(at: from), newDocuments: try store.documents(at: to),
                                             oldLabel: "revision \(from)", newLabel: "revision \(to)")
                different = !text.isEmpty
                if different { Console.print(text) }
            }
            if different { throw Exit.differences }
        }
    }
}

enum HistoryRendering {
    /// A whole desired state with a header naming its revision.
    static func state(_ resources: [Resource], revision record: Revision, format: OutputFormat) throws -> String {
        if format == .json { return ObjectRendering.json(resources) }
        let header = "# revision \(record.id ?? 0), \(time(record.createdAt)) by \(record.author)"
            + (record.message.isEmpty ? "" : ": \(record.message)") + "\n"
        return header + ResourceCoding.yaml(resources)
    }

    static func time(_ date: Date) -> String { UTCTime.text(date) }

    static func changes(_ summary: RevisionSummary, focus: ObjectKey?) -> String {
        if let focus, let mine = summary.changes.first(where: { $0.key == focus }) {
            let others = summary.changes.count - 1
            return "\(mine.key) \(mine.action.rawValue)" + (others > 0 ? " (+\(others) other)" : "")
        }
        if summary.changes.count <= 3 {
            return summary.changes.map { "\($0.key) \($0.action.rawValue)" }.joined(separator: ", ")
        }
        let r = summary.revision
        return [("created", r.createdCount), ("configured", r.configuredCount), ("deleted", r.deletedCount)]
            .filter { $0.1 > 0 }.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
    }

    static func table(_ revisions: [RevisionSummary], focus: ObjectKey?) -> String {
        var t = Table("REVISION", "TIME", "AUTHOR", "ORIGIN", "CHANGES", "MESSAGE")
        for s in revisions {
            t.add(["\(s.number)", time(s.revision.createdAt), s.revision.author, s.revision.origin.rawValue,
                   changes(s, focus: focus), s.revision.message])
        }
        return t.rendered
    }

    static func json(_ revisions: [RevisionSummary]) -> String {
        let items: [[String: Any]] = revisions.map { s in
            [
                "revision": s.number, "time": time(s.revision.createdAt), "author": s.revision.author,
                "origin": s.revision.origin.rawValue, "message": s.revision.message,
                "changes": s.changes.map { ["object": $0.key.description, "action": $0.action.rawValue] },
            ]
        }
        let data = try! JSONSerialization.data(withJSONObject: items, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}
