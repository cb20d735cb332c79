import ArgumentParser
import BerthControl
import BerthDocker
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

extension ModelCommand {
    struct StatusCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Show, node by node, where a model's staged versions stand.",
            discussion: """
                For each version with a `source` and each node: STATE is staged (every file in place, its \
                sha256 checked as it was written), staging (with progress), failed (why; retried with \
                backoff), purged, or absent. NEEDED says why the node must hold it: serve (its replicas \
                run it; they wait in phase `staging` until it is there), standby (a standby holds what the \
                fleet serves, so a promotion never downloads) or keep (kept for rollback); `-` when it \
                need not. Versions whose artifacts are absolute paths are not staged: see `model verify`. \
                Exit status 0; 1 when a node lacks something it needs.
                """)

        @Argument(help: ArgumentHelp("The model.", valueName: "model"))
        var model: String

        @Option(name: .shortAndLong, help: "table or json.")
        var output: OutputFormat = .table

        @OptionGroup var state: StateOptions

        func validate() throws {
            guard output != .yaml else { throw ValidationError("-o is table or json") }
        }

        func run() async throws {
            guard let store = try reportingErrorsReturning({ try state.openForReading() }) ?? nil,
                  let object = try reportingErrorsReturning({ try store.object(ObjectKey(.model, model)) }) ?? nil, let spec = object.resource.model
            else {
                Console.error("model \"\(model)\" not found in \(state.path)")
                throw Exit.notFound
            }
            let report = try reportingErrorsReturning { try StagingReport.read(store, model: model) }!
            if output == .json {
                Console.print(StatusRendering.json(report.entries))
            } else if !spec.versions.contains(where: \.isStaged) {
                Console.print("model \(model) has no staged versions (none names a source); its artifacts are files placed by hand, checked by `berth model verify`")
            } else {
                Console.print(Self.table(report.entries))
            }
            if !report.missing.isEmpty { throw Exit.differences }
        }

        static func table(_ entries: [StagingReport.Entry]) -> String {
            var t = Table("NODE", "ROLE", "VERSION", "STATE", "NEEDED", "FILES", "DETAIL")
            for e in entries {
                let files = e.bytesTotal == 0 ? "-" : e.state == .staging || e.state == .failed
                    ? "\(ArtifactStaging.size(e.bytesDone)) / \(ArtifactStaging.size(e.bytesTotal))" : ArtifactStaging.size(e.bytesTotal)
                t.add([e.node, e.role, e.version, e.state.rawValue, e.neededFor ?? "-", files, e.detail.isEmpty ? "-" : e.detail])
            }
            return t.rendered
        }
    }

    struct Stage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stage a version's files on a node now, and wait for it.",
            discussion: """
                Does what the controller's staging does, once: a short-lived container on NODE fetches \
                each artifact from the version's source (a file server, or another node serving its own \
                model root for the copy) into the node's storage.modelRoot, resuming \
                partial files with HTTP Range requests, hashing while writing, and renaming a file into \
                place only when its size and sha256 match. Progress goes to standard error. The outcome \
                is recorded (staging records, verifications, an event) as the controller records it. \
                Exit status: 0 staged, 6 a file's sha256 differs, 5 not enough free space, 70 the source or \
                the node could not be used.
                """)

        @Argument(help: ArgumentHelp("The version to stage.", valueName: "model@version"))
        var target: String

        @Option(help: ArgumentHelp("The node to stage on.", valueName: "name"))
        var node: String

        @Option(help: ArgumentHelp("Stage with this image (needs sh, sha256sum or openssl, and curl or wget) instead of the version's own.", valueName: "image"))
        var image: String?

        @Option(help: ArgumentHelp("For a version copied from another node (source: { node: NAME }): the port that node serves its files on during the copy.", valueName: "port"))
        var copyPort = PeerCopy.defaultPorts.lowerBound

        @OptionGroup var state: StateOptions

        func validate() throws {
            guard (1...65_535).contains(copyPort) else { throw ValidationError("--copy-port must be a port, 1–65535") }
            guard target.split(separator: "@").count == 2 else { throw ValidationError("give MODEL@VERSION, e.g. deepseek-v3@2025-01-fp8") }
        }

        func run() async throws {
            let parts = target.split(separator: "@", maxSplits: 1).map(String.init)
            let store = try reportingErrorsReturning { try state.openForWriting() }!
            guard let spec = try reportingErrorsReturning({ try store.object(ObjectKey(.model, parts[0])) })??.resource.model else {
                Console.error("model \"\(parts[0])\" not found in \(state.path)")
                throw Exit.notFound
            }
            guard let version = spec.version(parts[1]) else {
                Console.error("model \(parts[0]) has no version \"\(parts[1])\"; it has: \(spec.versions.map(\.version).joined(separator: ", "))")
                throw Exit.notFound
            }
            guard version.isStaged else {
                Console.error("\(target) names no source: its artifacts are absolute paths placed by hand; check them with `berth model verify \(target) --node \(node)`")
                throw Exit.invalidInput
            }
            guard let nodeSpec = try reportingErrorsReturning({ try store.object(ObjectKey(.node, node)) })??.resource.node else {
                Console.error("node \"\(node)\" not found in \(state.path)")
                throw Exit.notFound
            }
            let report = try reportingErrorsReturning { try StagingReport.read(store, model: parts[0]) }!
            let why = report.entries.first { $0.node == node && $0.version == parts[1] }?.neededFor.flatMap(StagingPlan.Why.init(rawValue:)) ?? .keep
            let previous = try reportingErrorsReturning { try store.stagings(model: parts[0]) }!.first { $0.node == node && $0.version == parts[1] }
            let client: DockerClient
            do {
                client = try await DockerClient.connect(DockerEndpoint(nodeSpec.engine))
            } catch {
                Console.error("cannot reach the engine of node \(node) (\(nodeSpec.engine.endpoint)): \(error)")
                throw Exit.internalError
            }
            var peer: PeerCopy?
            if let source = version.source?.node {
                guard let sourceSpec = try reportingErrorsReturning({ try store.object(ObjectKey(.node, source)) })??.resource.node else {
                    Console.error("\(target) is copied from node \"\(source)\", which is not in \(state.path)")
                    throw Exit.notFound
                }
                do {
                    let sourceClient = try await DockerClient.connect(DockerEndpoint(sourceSpec.engine))
                    peer = PeerCopy(target: .init(node: source, spec: sourceSpec, port: copyPort), client: sourceClient)
                } catch {
                    Console.error("cannot reach the engine of node \(source) (\(sourceSpec.engine.endpoint)), which \(target) is copied from: \(error)")
                    throw Exit.internalError
                }
            }
            Console.note("staging \(target) (\(version.artifacts.count) file(s), \(ArtifactStaging.size(version.artifactBytes))) on \(node) into \(nodeSpec.modelStorage.modelRoot)")
            let finished = try await ArtifactStaging.stageNow(
                client: client, node: node, spec: nodeSpec, need: StagingPlan.Need(model: parts[0], version: version, why: why), previous: previous,
                store: store, image: image, peer: peer
            ) { row in Console.note(row.detail) }
            try reportingErrors {
                try store.record(events: [finished.notice.event(at: Date(), revision: nil)])
            }
            if finished.ok {
                Console.print("staged    \(target) on \(node): \(finished.row.detail)")
                return
            }
            Console.error("\(target) on \(node): \(finished.row.detail)")
            switch finished.outcome {
            case .mismatch: throw Exit.verificationFailed
            case .noSpace: throw Exit.infeasible
            default: throw Exit.internalError
            }
        }
    }
}
