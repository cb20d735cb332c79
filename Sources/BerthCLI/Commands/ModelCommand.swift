import ArgumentParser
import BerthControl
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
            let purge = LocalPurge(model: parts[0], version: version, passes: passes)
            if let refusal = try reportingErrorsReturning({ try purge.refusal(spec: model, store: store) }) ?? nil {
                Console.error(refusal)
                throw Exit.infeasible
            }
            let outcome = try reportingErrorsReturning {
                try purge.run(by: author ?? Identity.currentUser, store: store) { r in
                    switch r.problem {
                    case "": Console.print("purged    \(r.path) (\(r.bytes) bytes, \(passes) passes)")
                    case "missing": Console.print("missing   \(r.path) (nothing to purge)")
                    default: Console.print("FAILED    \(r.path): \(r.problem)")
                    }
                }
            }!
            if outcome.failed > 0 { throw Exit.internalError }
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
            try reportingErrors { try state.openExisting().record(records) }
            if failed > 0 {
                Console.note("\(failed) artifact(s) failed verification")
                throw Exit.verificationFailed
            }
        }
    }
}
