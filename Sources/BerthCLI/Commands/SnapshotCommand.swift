import ArgumentParser
import BerthModel
import BerthStore
import Foundation

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Consistent copies of the state database, and restoring from them.",
        discussion: """
            Snapshots live in the state folder's snapshots/ (state/snapshots/ by default): <id>.db, a copy \
            taken with SQLite's VACUUM INTO while Berth keeps running, and <id>.json with its sha256, the \
            revision it holds and its time. A snapshot counts only after PRAGMA integrity_check passes. \
            A PostgreSQL state's snapshots are SQLite files all the same (Berth's tables read in one \
            repeatable-read view), in this host's state/snapshots/; restore one as a revision, or copy it \
            into an empty database with `berth state copy`.
            """,
        subcommands: [Create.self, List.self, Verify.self, Restore.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a snapshot now, then prune old ones.")

        @Option(help: "Keep the newest snapshot of each of this many hours.")
        var keepHourly = 24

        @Option(help: "Keep the newest snapshot of each of this many days.")
        var keepDaily = 7

        @OptionGroup var state: StateOptions

        func run() throws {
            try reportingErrors {
                let store = try state.openExisting()
                let snapshots = SnapshotStore(statePath: state.path)
                let record = try snapshots.create(from: store)
                Console.print("snapshot \(record.id) taken: revision \(record.revision), \(record.sizeBytes) bytes, sha256 \(record.sha256)")
                let removed = try snapshots.prune(hourly: keepHourly, daily: keepDaily)
                if !removed.isEmpty { Console.print("pruned \(removed.count): \(removed.joined(separator: ", "))") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List snapshots, newest first.")

        @OptionGroup var state: StateOptions

        func run() throws {
            try reportingErrors {
                let records = try SnapshotStore(statePath: state.path).list()
                if records.isEmpty {
                    Console.note("no snapshots in \(SnapshotStore(statePath: state.path).folder)")
                    return
                }
                var t = Table("ID", "TIME", "REVISION", "SIZE", "SHA256")
                for r in records {
                    t.add([r.id, HistoryRendering.time(r.createdAt), "\(r.revision)", "\(r.sizeBytes)", String(r.sha256.prefix(16)) + "…"])
                }
                Console.print(t.rendered)
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check snapshots' hashes and integrity (all, or one).",
            discussion: "Exit status: 0 when every snapshot checked is sound, 6 when any is not.")

        @Argument(help: "One snapshot ID.")
        var id: String?

        @OptionGroup var state: StateOptions

        func run() throws {
            var bad = 0
            try reportingErrors {
                let snapshots = SnapshotStore(statePath: state.path)
                let ids = try id.map { [$0] } ?? snapshots.list().map(\.id)
                for id in ids {
                    let problems = try snapshots.verify(id)
                    if problems.isEmpty {
                        Console.print("ok      \(id)")
                    } else {
                        bad += 1
                        Console.print("FAILED  \(id): \(problems.joined(separator: "; "))")
                    }
                }
            }
            if bad > 0 { throw Exit.verificationFailed }
        }
    }

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a snapshot's desired state the current one.",
            discussion: """
                By default the snapshot's desired state is stored as a new revision of the current \
                database (history is kept; the controller rolls it out). For a lost or damaged database, \
                --replace-database moves the current file aside (as <name>.broken-<time>) and puts the \
                snapshot in its place. A snapshot that fails verification is refused either way.
                """)

        @Argument(help: "The snapshot ID (see `berth snapshot list`).")
        var id: String

        @Flag(help: "Disaster recovery: replace the database file itself with the snapshot.")
        var replaceDatabase = false

        @Option(help: ArgumentHelp("Who restores; default the person behind sudo, else $USER.", valueName: "name"))
        var author: String?

        @OptionGroup var state: StateOptions

        func run() throws {
            try reportingErrors {
                let snapshots = SnapshotStore(statePath: state.path)
                if replaceDatabase {
                    do {
                        _ = try snapshots.replaceDatabase(at: state.path, with: id) { Console.print($0) }
                    } catch let held as SnapshotStore.LeaseHeld {
                        Console.error(held.description)
                        throw Exit.differences
                    }
                    return
                }
                let snapshot = try snapshots.open(id)
                let store = try state.openExisting()
                let target = try snapshot.store.state(at: snapshot.record.revision)
                let options = ApplyOptions(author: author ?? Identity.currentUser, message: "restore snapshot \(id) (revision \(snapshot.record.revision))",
                                           prune: true, origin: .restore)
                let result = try store.apply(target.map { LoadedResource(resource: $0) }, options: options)
                for change in result.changes where change.action != .unchanged { Console.print("\(change.key) \(change.action.rawValue)") }
                Console.print(result.revision.map { "revision \($0) stored: restore of snapshot \(id)" } ?? "no changes: the desired state already equals snapshot \(id)")
            }
        }
    }
}
