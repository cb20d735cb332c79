import ArgumentParser
import BerthStore
import Foundation

/// `--state`, shared by every verb.
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Path of the state database, or a PostgreSQL URL.",
                                            discussion: "Default: $BERTH_STATE, else state/berth.db. A URL reads postgres://USER@HOST[:PORT]/DB[?sslmode=disable|prefer|require]; never write the password in it.",
                                            valueName: "path|url"))
    var state: String?

    @Option(name: .long, help: ArgumentHelp("File holding the PostgreSQL password (readable by its owner only).",
                                            discussion: "Default: $BERTH_STATE_PASSWORD_FILE, else the libpq password file ($PGPASSFILE, else ~/.pgpass).",
                                            valueName: "file"))
    var statePasswordFile: String?

    var path: String {
        if let state { return state }
        if let env = ProcessInfo.processInfo.environment["BERTH_STATE"], !env.isEmpty { return env }
        return Self.defaultPath
    }

    /// The state database when neither --state nor $BERTH_STATE names one.
    static let defaultPath = "state/berth.db"

    /// Opens the state for writing, creating it when missing.
    func openForWriting() throws -> StateStore {
        try StateStore.open(path: path, create: true, passwordFile: statePasswordFile)
    }

    /// Opens an existing state (`.notFound` when there is none).
    func openExisting() throws -> StateStore {
        try StateStore.open(path: path, create: false, passwordFile: statePasswordFile)
    }

    /// Opens the state for reading; nil (with a note on stderr) when it does not exist yet.
    func openForReading(quiet: Bool = false) throws -> StateStore? {
        guard PostgresLocation.isURL(path) || FileManager.default.fileExists(atPath: path) else {
            if !quiet { Console.note("no state at \(path) yet; `berth apply -f MANIFESTS` creates it") }
            return nil
        }
        do {
            return try openExisting()
        } catch let error as StoreError where error.code == .notFound && PostgresLocation.isURL(path) {
            // An empty database reads as a state file not made yet.
            if !quiet { Console.note("no state in \(error.path) yet; `berth apply -f MANIFESTS` makes it one") }
            return nil
        }
    }
}
