import ArgumentParser
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
                try FleetWait(store: store, revision: revision, timeout: timeout).run()
            }
        }
    }
}

/// Waits, with a live progress line, until the controller reports every deployment of the
/// desired state converged at `revision` or later.
struct FleetWait {
    let store: StateStore
    let revision: Int64
    let timeout: Double

    struct Failed: Error, CustomStringConvertible {
        var description: String
    }

    func run() throws {
        let started = Date()
        let tty = isatty(STDERR_FILENO) != 0
        var lastLine = ""
        while true {
            let checkStarted = Date()
            let (done, line, failure) = try check(now: Date(), since: started)
            // Reading a thousand deployments' status takes a while: wait several times that
            // between reads, so that waiting never costs the state file a core.
            let pause = max(0.25, min(2, 4 * Date().timeIntervalSince(checkStarted)))
            let elapsed = Int(Date().timeIntervalSince(started))
            let shown = "[\(elapsed)s] \(line)"
            if tty {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + shown).utf8))
            } else if line != lastLine {
                Console.note(shown)
            }
            lastLine = line
            if done {
                if tty { FileHandle.standardError.write(Data("\n".utf8)) }
                Console.print("converged at revision \(revision) in \(elapsed) s")
                return
            }
            if let failure {
                if tty { FileHandle.standardError.write(Data("\n".utf8)) }
                throw Failed(description: failure)
            }
            if Date().timeIntervalSince(started) > timeout {
                if tty { FileHandle.standardError.write(Data("\n".utf8)) }
                throw Failed(description: "timed out after \(Int(timeout)) s waiting for revision \(revision): \(line)")
            }
            Thread.sleep(forTimeInterval: pause)
        }
    }

    /// Converged?, the progress line, and a failure that ends the wait.
    /// Only status from a pass that ended after `since` counts: an older one may describe
    /// containers that are gone (a controller stopped long ago, a cluster started afresh).
    func check(now: Date, since: Date) throws -> (Bool, String, String?) {
        let status = try store.fleetStatus()
        let objects = try store.objects(kind: .deployment)
        guard try store.liveLeaseHolder(now: now) != nil else {
            return (false, "no controller is running on this state (start `berth controller`)", nil)
        }
        guard let controller = status.controller, controller.revision >= revision else {
            return (false, "waiting for the controller to pick up revision \(revision)", nil)
        }
        guard controller.lastPassAt >= since else {
            return (false, "waiting for the controller's next pass", nil)
        }
        let byName = Dictionary(uniqueKeysWithValues: status.deployments.map { ($0.name, $0) })
        var parts: [String] = []
        var waiting: [String] = []
        var converged = true
        var (updatedReady, desired) = (0, 0)
        for o in objects {
            guard let d = byName[o.resource.name], d.objectRevision == o.revision else {
                parts.append("\(o.resource.name) pending")
                waiting.append(parts.last!)
                converged = false
                continue
            }
            updatedReady += d.updatedReady
            desired += d.desired
            if d.rollout == .halted {
                return (false, "", "deployment \(d.name): rollout halted: \(d.conditions[ConditionType.progressing.rawValue]?.message ?? "ready deadline exceeded")"
                        + (o.resource.deployment!.rollout.autoRollback ? " (the controller rolls it back)" : "; `berth describe deployment \(d.name)` shows more"))
            }
            if d.isConverged {
                parts.append("\(d.name) \(d.updatedReady)/\(d.desired) ✓")
            } else {
                converged = false
                let blocked = d.conditions[ConditionType.progressing.rawValue].flatMap { $0.status ? nil : $0.reason }
                parts.append("\(d.name) \(d.updatedReady)/\(d.desired) ready on \(d.modelVersion)" + (blocked.map { " (\($0))" } ?? ""))
                waiting.append(parts.last!)
            }
        }
        guard objects.count > Self.namedDeployments else { return (converged, parts.joined(separator: ", "), nil) }
        // A large fleet: totals, and the first few deployments still on their way.
        var line = "\(objects.count - waiting.count)/\(objects.count) deployments converged, \(updatedReady)/\(desired) replicas ready on their version"
        if !waiting.isEmpty {
            line += "; waiting on " + waiting.prefix(3).joined(separator: ", ") + (waiting.count > 3 ? " and \(waiting.count - 3) more" : "")
        }
        return (converged, line, nil)
    }

    /// Up to this many deployments, the progress line names each; past it, it counts.
    static let namedDeployments = 6
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
