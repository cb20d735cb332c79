import ArgumentParser
import BerthDocker
import BerthModel
import BerthStore
import Foundation

struct ModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Work with model versions and their files.", subcommands: [Verify.self])

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
