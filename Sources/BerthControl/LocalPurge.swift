import BerthDocker
import BerthModel
import BerthReconciler
import BerthStore
import Foundation

/// `berth model purge`: overwrite and remove a version's artifacts from this machine's file
/// system, refused for a version that must stay, recorded in the event log.
public struct LocalPurge: Sendable {
    public var model: String
    public var version: ModelVersion
    public var passes: Int

    public init(model: String, version: ModelVersion, passes: Int) {
        self.model = model
        self.version = version
        self.passes = passes
    }

    var label: String { "\(model)@\(version.version)" }

    /// Why the version must stay, or nil: a deployment uses it, it is kept ready (keepVersions,
    /// pinned), or one of its files is also a file of a version that must stay (a shared path,
    /// a symbolic or hard link).
    public func refusal(spec: ModelSpec, store: StateStore) throws -> String? {
        let users = try store.objects(kind: .deployment)
            .filter { $0.resource.deployment?.model == model && $0.resource.deployment?.version == version.version }.map(\.resource.name)
        if !users.isEmpty {
            return "\(label) is deployed (\(users.map { "deployment/\($0)" }.joined(separator: ", "))): move them to another version first"
        }
        if ImageRetention.keptVersions(of: spec, deployed: []).contains(where: { $0.version == version.version }) {
            let why = version.pinned == true ? "it is pinned" : "it is among the \(spec.keepVersions) newest versions kept ready to roll back to (keepVersions)"
            return "\(label) is kept: \(why); unpin it or lower keepVersions first"
        }
        let owners = try Self.protectedFiles(store: store, except: (model, version.version))
        let clashes = version.artifacts.compactMap { a in FileIdentity(a.path).flatMap { owners[$0] }.map { "\(a.path) is also \($0)" } }
        if !clashes.isEmpty {
            return "\(label) shares files with versions that must stay:\n  " + clashes.joined(separator: "\n  ") + "\nnothing was purged"
        }
        return nil
    }

    /// What a purge did.
    public struct Outcome: Sendable {
        public var removed = 0
        public var bytes: Int64 = 0
        public var failed = 0
    }

    /// Purges every artifact (each result handed to `each` as it ends), records the event and
    /// that the version's earlier verifications no longer count.
    public func run(by author: String, store: StateStore, each: (ArtifactPurge.Result) -> Void) throws -> Outcome {
        var outcome = Outcome()
        for artifact in version.artifacts {
            let r = ArtifactPurge.purge(artifact.path, passes: passes)
            switch r.problem {
            case "": outcome.removed += 1; outcome.bytes += r.bytes
            case "missing": break
            default: outcome.failed += 1
            }
            each(r)
        }
        try store.record(events: [Event(time: Date(), revision: nil, kind: "model", name: model, type: outcome.failed > 0 ? "Warning" : "Normal",
                                        reason: Reason.artifactsPurged.rawValue,
                                        message: "\(label): \(outcome.removed) file(s), \(outcome.bytes) bytes overwritten \(passes) times and removed by \(author)"
                                            + (outcome.failed > 0 ? "; \(outcome.failed) failed" : ""))])
        // Earlier verification results of this version no longer count: it must verify again.
        try store.recordPurge(model: model, version: version, by: author)
        return outcome
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
