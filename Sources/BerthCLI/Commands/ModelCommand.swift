import ArgumentParser
import BerthDocker
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

struct ModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Work with model versions and their files.", subcommands: [StatusCommand.self, Stage.self, Verify.self, Purge.self])

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Overwrite and remove a model version's artifacts from this machine's filesystem.",
            discussion: """
                Each artifact file of MODEL@VERSION is overwritten in place --passes times (random bytes, zeros \
                on the last pass), synced after every pass, then removed; the purge is recorded in the event \
                log with who did it. Refused (exit 5) for a version a deployment uses or one kept ready \
                (among the model's keepVersions newest, or pinned). Best effort: SSDs remap writes and \
                copy-on-write or journalling file systems and snapshots may keep old blocks; encrypting the \
                model disk and discarding its key is the sure way.
                """)

        @Argument(help: ArgumentHelp("The version to purge.", valueName: "model@version"))
        var target: String

        @Option(help: "Overwrite passes before removing.")
        var passes = 3

        @Option(help: ArgumentHelp("Who purges; default the person behind sudo, else $USER.", valueName: "name"))
        var author: String?

        @OptionGroup var state: StateOptions

        func validate() throws {
            guard target.split(separator: "@").count == 2 else { throw ValidationError("give MODEL@VERSION, e.g. deepseek-v3@2025-01-fp8") }
            guard (1...35).contains(passes) else { throw ValidationError("--passes is 1–35") }
        }

        func run() async throws {
            let parts = target.split(separator: "@", maxSplits: 1).map(String.init)
            guard let store = try reportingErrorsReturning({ try state.openForReading() }) ?? nil,
                  let spec = try reportingErrorsReturning({ try store.object(ObjectKey(.model, parts[0])) }) ?? nil, let model = spec.resource.model
            else {
                Console.error("model \"\(parts[0])\" not found in \(state.path)")
                throw Exit.notFound
            }
            guard let version = model.version(parts[1]) else {
                Console.error("model \(parts[0]) has no version \"\(parts[1])\"; it has: \(model.versions.map(\.version).joined(separator: ", "))")
                throw Exit.notFound
            }
            let users = try reportingErrorsReturning({ try store.objects(kind: .deployment) })!
                .filter { $0.resource.deployment?.model == parts[0] && $0.resource.deployment?.version == parts[1] }.map(\.resource.name)
            if !users.isEmpty {
                Console.error("\(target) is deployed (\(users.map { "deployment/\($0)" }.joined(separator: ", "))): move them to another version first")
                throw Exit.infeasible
            }
            if ImageRetention.keptVersions(of: model, deployed: []).contains(where: { $0.version == parts[1] }) {
                let why = version.pinned == true ? "it is pinned" : "it is among the \(model.keepVersions) newest versions kept ready to roll back to (keepVersions)"
                Console.error("\(target) is kept: \(why); unpin it or lower keepVersions first")
                throw Exit.infeasible
            }
            // The same file may serve another version under another path (a shared path, a symbolic
            // or hard link): no byte of a version that is deployed, kept, pinned or still running is touched.
            let owners = try reportingErrorsReturning { try Self.protectedFiles(store: store, except: (parts[0], parts[1])) }!
            let clashes = version.artifacts.compactMap { a in FileIdentity(a.path).flatMap { owners[$0] }.map { "\(a.path) is also \($0)" } }
            if !clashes.isEmpty {
                Console.error("\(target) shares files with versions that must stay:\n  " + clashes.joined(separator: "\n  ") + "\nnothing was purged")
                throw Exit.infeasible
            }
            var removed = 0, bytes: Int64 = 0, failed = 0
            for artifact in version.artifacts {
                let r = ArtifactPurge.purge(artifact.path, passes: passes)
                switch r.problem {
                case "": removed += 1; bytes += r.bytes; Console.print("purged    \(r.path) (\(r.bytes) bytes, \(passes) passes)")
                case "missing": Console.print("missing   \(r.path) (nothing to purge)")
                default: failed += 1; Console.print("FAILED    \(r.path): \(r.problem)")
                }
            }
            let who = author ?? Identity.currentUser
            try reportingErrors {
                try store.record(events: [Event(time: Date(), revision: nil, kind: "model", name: parts[0], type: failed > 0 ? "Warning" : "Normal",
                                                reason: Reason.artifactsPurged.rawValue,
                                                message: "\(target): \(removed) file(s), \(bytes) bytes overwritten \(passes) times and removed by \(who)"
                                                    + (failed > 0 ? "; \(failed) failed" : ""))])
            }
            // Earlier verification results of this version no longer count: it must verify again.
            try reportingErrors { try store.recordPurge(model: parts[0], version: version, by: who) }
            if failed > 0 { throw Exit.internalError }
        }

        /// Files of every version that must stay, by identity (device and inode, symbolic links
        /// followed), with whose they are and why: deployed, kept (keepVersions, pinned) or still
        /// running somewhere according to the last stored status.
        static func protectedFiles(store: StateStore, except: (model: String, version: String)) throws -> [FileIdentity: String] {
            let objects = try store.objects()
            let deployments = objects.compactMap { o in o.resource.deployment.map { (o.resource.name, $0) } }
            var running: Set<String> = []
            for d in try store.fleetStatus().deployments {
                guard let model = deployments.first(where: { $0.0 == d.name })?.1.model else { continue }
                for r in d.replicas { if let v = r.modelVersion { running.insert("\(model)@\(v)") } }
            }
            var owners: [FileIdentity: String] = [:]
            for o in objects {
                guard let model = o.resource.model else { continue }
                let kept = Set(ImageRetention.keptVersions(of: model, deployed: []).map(\.version))
                for v in model.versions where !(o.resource.name == except.model && v.version == except.version) {
                    let key = "\(o.resource.name)@\(v.version)"
                    let why = deployments.contains { $0.1.model == o.resource.name && $0.1.version == v.version } ? "deployed"
                        : running.contains(key) ? "still running" : v.pinned == true ? "pinned" : kept.contains(v.version) ? "kept (keepVersions)" : nil
                    guard let why else { continue }
                    for a in v.artifacts { if let id = FileIdentity(a.path) { owners[id] = "\(a.path) of \(key) (\(why))" } }
                }
            }
            return owners
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every artifact's sha256 against the stored manifest.",
            discussion: """
                Files are read in 4 MiB chunks, never whole. Without --node the files are read on this \
                machine; with --node a short-lived container of the version's image computes the hashes on \
                that node, with the model folders mounted read-only and no network. Results are stored with \
                their time. Exit status: 0 when every file matches, 6 when any is missing or differs.
                """)

        @Argument(help: ArgumentHelp("MODEL or MODEL@VERSION (default: every version).", valueName: "model[@version]"))
        var target: String

        @Option(help: "Verify on this node's filesystem, through its Docker engine.")
        var node: String?

        @OptionGroup var state: StateOptions

        func run() async throws {
            let parts = target.split(separator: "@", maxSplits: 1).map(String.init)
            guard let store = try reportingErrorsReturning({ try state.openForReading() }) ?? nil,
                  let model = try reportingErrorsReturning({ try store.object(ObjectKey(.model, parts[0])) }) ?? nil,
                  let spec = model.resource.model
            else {
                Console.error("model \"\(parts[0])\" not found in \(state.path)")
                throw Exit.notFound
            }
            let versions = parts.count == 2 ? spec.versions.filter { $0.version == parts[1] } : spec.versions
            if versions.isEmpty {
                Console.error("model \(parts[0]) has no version \"\(parts[1])\"; it has: \(spec.versions.map(\.version).joined(separator: ", "))")
                throw Exit.notFound
            }
            var client: DockerClient?
            if let node {
                guard let n = try reportingErrorsReturning({ try store.object(ObjectKey(.node, node)) }) ?? nil, let nodeSpec = n.resource.node else {
                    Console.error("node \"\(node)\" not found in \(state.path)")
                    throw Exit.notFound
                }
                do {
                    client = try await DockerClient.connect(DockerEndpoint(nodeSpec.engine))
                } catch {
                    Console.error("\(error)")
                    throw Exit.stateUnusable
                }
            }
            var failed = 0
            var records: [Verification] = []
            for version in versions {
                let results: [ArtifactVerifier.Result]
                do {
                    if let client {
                        results = try await ArtifactVerifier.verifyOnNode(client, version)
                    } else {
                        results = ArtifactVerifier.verifyLocally(version)
                    }
                } catch {
                    Console.error("\(error)")
                    throw Exit.stateUnusable
                }
                if results.isEmpty { Console.print("\(parts[0])@\(version.version): no artifacts listed") }
                for r in results {
                    let place = node.map { " on \($0)" } ?? ""
                    if r.ok {
                        Console.print("ok        \(parts[0])@\(version.version)\(place)  \(r.path)")
                    } else {
                        failed += 1
                        let detail = r.problem == "sha256 mismatch" ? "sha256 mismatch: manifest \(r.expected), file \(r.actual ?? "?")" : r.problem
                        Console.print("FAILED    \(parts[0])@\(version.version)\(place)  \(r.path): \(detail)")
                    }
                    records.append(Verification(model: parts[0], version: version.version, path: r.path, node: node, expected: r.expected,
                                                actual: r.actual, ok: r.ok, detail: r.problem, verifiedAt: Date()))
                }
            }
            try reportingErrors { try StateStore.open(path: state.path, create: false).record(records) }
            if failed > 0 {
                Console.note("\(failed) artifact(s) failed verification")
                throw Exit.verificationFailed
            }
        }
    }
}

/// A file as the file system knows it: the same for every path (symbolic or hard link) to it.
struct FileIdentity: Hashable {
    var device: UInt64
    var inode: UInt64

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}
