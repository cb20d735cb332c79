import ArgumentParser
import BerthStore
import Foundation

/// `--state`, shared by every verb.
struct StateOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Path of the state database.", discussion: "Default: $BERTH_STATE, else state/berth.db.", valueName: "path"))
    var state: String?

    var path: String {
        if let state { return state }
        if let env = ProcessInfo.processInfo.environment["BERTH_STATE"], !env.isEmpty { return env }
        return Self.defaultPath
    }

    /// The state database when neither --state nor $BERTH_STATE names one.
    static let defaultPath = "state/berth.db"

    /// Opens the state for writing, creating it when missing.
    func openForWriting() throws -> StateStore {
        try StateStore.open(path: path, create: true)
    }

    /// Opens the state for reading; nil (with a note on stderr) when it does not exist yet.
    func openForReading(quiet: Bool = false) throws -> StateStore? {
        guard PostgresLocation.isURL(path) || FileManager.default.fileExists(atPath: path) else {
            if !quiet { Console.note("no state at \(path) yet; `berth apply -f MANIFESTS` creates it") }
            return nil
        }
        return try StateStore.open(path: path, create: false)
    }
}
