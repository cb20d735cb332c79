import ArgumentParser
import BerthStore
import Foundation

struct StateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Move a fleet's state between SQLite and PostgreSQL.",
        subcommands: [Copy.self])

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a fleet's whole history into a new state.",
            discussion: """
                Copies every revision, object version, event, verification record, node and GPU hold and \
                staging record from --from into --to, either a SQLite file or a PostgreSQL URL \
                (postgres://USER@HOST[:PORT]/DB?sslmode=…), in either direction. The source is read in one \
                consistent view; the target is written in one transaction and must be empty (a file that does \
                not exist yet, or an empty database), so a failed copy leaves nothing behind. Refused while a \
                controller holds the lease on either: stop the controllers first, then point them at the new \
                state. The rows of each table are counted on both sides at the end.

                Example: berth state copy --from state/berth.db --to postgres://berth@db1/berth --to-password-file /etc/berth/pg
                """)

        @Option(help: ArgumentHelp("The state to copy: a SQLite file or a PostgreSQL URL.", valueName: "path|url"))
        var from: String

        @Option(help: ArgumentHelp("The new state: a file that does not exist yet, or an empty PostgreSQL database.", valueName: "path|url"))
        var to: String

        @Option(help: ArgumentHelp("File holding the password of --from's PostgreSQL (else $PGPASSFILE or ~/.pgpass).", valueName: "file"))
        var fromPasswordFile: String?

        @Option(help: ArgumentHelp("File holding the password of --to's PostgreSQL (else $PGPASSFILE or ~/.pgpass).", valueName: "file"))
        var toPasswordFile: String?

        func validate() throws {
            if from == to { throw ValidationError("--from and --to name the same state") }
        }

        func run() throws {
            try reportingErrors {
                let source = try StateStore.open(path: from, create: false, passwordFile: fromPasswordFile)
                try refuseWhileLeading(source)
                if !PostgresLocation.isURL(to), FileManager.default.fileExists(atPath: to) {
                    throw StoreError(.invalidLocation, path: to, detail: "exists already", hint: "copy into a path that does not exist yet")
                }
                let madeFile = !PostgresLocation.isURL(to)
                let target = try StateStore.open(path: to, create: true, passwordFile: toPasswordFile)
                let copied: StateCopy.Counts
                let started = ContinuousClock.now
                do {
                    try refuseWhileLeading(target)
                    let sourceCounts = try StateCopy.counts(source)
                    Console.note("copying \(sourceCounts.revisions) revision(s) from \(source.path) to \(target.path)…")
                    // Counted on both sides by the copy itself, before it commits.
                    copied = try StateCopy.copy(from: source, to: target)
                } catch {
                    // The file made for the copy goes again: nothing half-made is left.
                    if madeFile { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: to + suffix) } }
                    throw error
                }
                let took = started.duration(to: .now)
                Console.print("copied \(copied) in \(took.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow)))")
                Console.print("checked: each table holds as many rows in \(target.path) as in \(source.path)")
            }
        }

        func refuseWhileLeading(_ store: StateStore) throws {
            if let lease = try store.liveLeaseHolder() {
                Console.error("a controller holds the lease on \(store.path) (\(lease.holder), epoch \(lease.epoch)); stop it before copying, so that nothing it writes is left behind")
                throw Exit.differences
            }
        }
    }
}
