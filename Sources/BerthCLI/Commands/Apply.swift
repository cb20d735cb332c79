import ArgumentParser
import BerthControl
import BerthModel
import BerthStore
import Foundation

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store manifests as a new revision of the desired state.",
        discussion: """
            Reads every file given (folders: their *.yaml, *.yml and *.json files), validates the \
            resulting desired state as a whole, and stores it in one transaction. Prints one line per \
            object (created, configured, unchanged, deleted) and the new revision. Identical input \
            creates no revision. On any error nothing is stored and every problem is listed.
            """)

    @Option(name: .shortAndLong, help: ArgumentHelp("Manifest file or folder; repeat for several.", valueName: "path"))
    var filename: [String] = []

    @Flag(help: "Validate and show what would change; store nothing.")
    var dryRun = false

    @Flag(help: "Delete stored objects that the input does not contain.")
    var prune = false

    @Option(name: .shortAndLong, help: "Why this change is made; kept in history.")
    var message: String = ""

    @Option(help: ArgumentHelp("Who applies; default the person behind sudo, else $USER.", valueName: "name"))
    var author: String?

    @Flag(help: "After storing, wait until the controller has rolled the fleet out: every deployment's replicas ready on the new spec.")
    var wait = false

    @Option(help: ArgumentHelp("Seconds --wait waits before giving up (exit 1).", valueName: "seconds"))
    var timeout: Double = 600

    @OptionGroup var state: StateOptions

    func validate() throws {
        if filename.isEmpty { throw ValidationError("give at least one manifest with -f PATH") }
        if wait && dryRun { throw ValidationError("--wait waits for a stored revision; it does not go with --dry-run") }
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        try reportingErrors {
            let input = try ManifestLoader.load(paths: filename)
            // A dry run never creates or changes the state: with none yet, it compares against empty.
            let store = dryRun ? (try state.openForReading(quiet: true) ?? StateStore.inMemory()) : try state.openForWriting()
            let options = ApplyOptions(author: author ?? Identity.currentUser, message: message, dryRun: dryRun, prune: prune)
            let result = try store.apply(input, options: options)
            let suffix = dryRun ? " (dry run)" : ""
            var out = ""
            for change in result.changes {
                out += "\(change.key) \(change.action.rawValue)\(suffix)\n"
            }
            let counts = Dictionary(grouping: result.changes, by: \.action).mapValues(\.count)
            let summary = "\(counts[.created] ?? 0) created, \(counts[.configured] ?? 0) configured, \(counts[.deleted] ?? 0) deleted, \(counts[.unchanged] ?? 0) unchanged"
            if let revision = result.revision {
                out += "revision \(revision) stored (\(summary))\n"
            } else if result.isNoOp {
                let latest = try store.latestRevision().map { "revision \($0)" } ?? "empty"
                out += "no changes; the desired state stays at \(latest)\n"
            } else {
                out += "dry run: nothing stored (\(summary))\n"
            }
            Console.print(out)
            if wait, let revision = try result.revision ?? store.latestRevision() {
                try WaitDisplay.run(store: store, revision: revision, timeout: timeout)
            }
        }
    }
}

/// `apply --wait`: the wait with a live progress line on standard error (rewritten in place on a
/// terminal, one line per change otherwise).
enum WaitDisplay {
    static func run(store: StateStore, revision: Int64, timeout: Double) throws {
        let tty = isatty(STDERR_FILENO) != 0
        var lastLine = ""
        var shown = false
        let seconds: Int
        do {
            // The line rewritten in place ends, converged or not, before anything else is written.
            defer { if tty && shown { FileHandle.standardError.write(Data("\n".utf8)) } }
            seconds = try ConvergenceWait(store: store, revision: revision, timeout: timeout).run { line, elapsed in
                shown = true
                if tty {
                    FileHandle.standardError.write(Data(("\r\u{1B}[K" + "[\(elapsed)s] \(line)").utf8))
                } else if line != lastLine {
                    Console.note("[\(elapsed)s] \(line)")
                }
                lastLine = line
            }
        }
        Console.print("converged at revision \(revision) in \(seconds) s")
    }
}

/// Who is running the command, for revision authors: the person behind `sudo` (verbs on a
/// packaged controller host run as `sudo -u berth berth …`), else the login user.
enum Identity {
    static var currentUser: String {
        let environment = ProcessInfo.processInfo.environment
        if let user = environment["SUDO_USER"], !user.isEmpty { return user }
        if let user = environment["USER"], !user.isEmpty { return user }
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid-\(getuid())"
    }
}
