import ArgumentParser
import BerthModel
import BerthStore
import Foundation

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List revisions of the desired state, newest first.",
        discussion: "With KIND/NAME, only the revisions that changed that object (deleted objects included).",
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List revisions, newest first (the default).")

        @Argument(help: ArgumentHelp("Only revisions that changed this object, e.g. deployment/chat.", valueName: "kind/name"))
        var object: String?

        @Option(help: "Show at most this many revisions.")
        var limit: Int = 20

        @Option(name: .shortAndLong, help: "Output format: table or json.")
        var output: OutputFormat = .table

        @OptionGroup var state: StateOptions

        func validate() throws {
            if let object, ObjectKey(reference: object) == nil {
                throw ValidationError("\"\(object)\" is not KIND/NAME (e.g. deployment/chat); kinds: \(ResourceKind.acceptedSpellings)")
            }
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() throws {
            try reportingErrors {
                guard let store = try state.openForReading() else { return }
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
                switch output {
                case .json: Console.print(ObjectRendering.json(resources))
                case .yaml, .table:
                    let header = "# revision \(revision), \(HistoryRendering.time(record.createdAt)) by \(record.author)"
                        + (record.message.isEmpty ? "" : ": \(record.message)") + "\n"
                    Console.print(header + ResourceCoding.yaml(resources))
                }
            }
        }
    }
}

enum HistoryRendering {
    static func time(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss'Z'"
        return f.string(from: date)
    }

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
