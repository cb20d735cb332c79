import BerthDocker
import BerthModel
import BerthReconciler
import BerthRuntime
import BerthStore
import Foundation

/// Purges: staged versions nothing keeps any more leave the nodes (overwritten, then unlinked),
/// versions removed from the manifest too, their paths taken from the stored history.
extension ArtifactStaging {
    /// A staged version no longer in the manifest as the stored history last had it, when the
    /// files staged (`row.fingerprint`) are exactly that listing's; nil when no stored revision
    /// matches (then the files are left alone: which paths they are is not known for sure).
    /// Looked up once per row and fingerprint.
    func removedVersion(_ row: Staging, store: StateStore) -> ModelVersion? {
        let key = "\(row.model)@\(row.version)#\(row.fingerprint)"
        if let known = removedVersions[key] { return known }
        var found: ModelVersion?
        let object = ObjectKey(.model, row.model)
        for revision in (try? store.revisions(changing: object)) ?? [] {
            guard let version = (try? store.object(object, at: revision))??.model?.version(row.version) else { continue }
            if Staging.fingerprint(version) == row.fingerprint { found = version }
            break
        }
        removedVersions[key] = .some(found)
        return found
    }

    /// The image a purge runs in: `--stager-image`; a listed version's own; for a removed
    /// version (its image may have been collected since) the first of its own and its model's
    /// kept versions' images that the node has.
    func purgeImage(for version: ModelVersion, listed: Bool, model: ModelSpec?, client: DockerClient) async throws -> String {
        if let image = settings.image { return image }
        if listed { return version.image }
        let candidates = [version.image] + (model?.versions.reversed().map(\.image) ?? [])
        for image in candidates where (try? await client.hasImage(image)) == true { return image }
        return version.image
    }

    /// Purges, node by node, staged versions nothing keeps any more (`StagingPlan.purgeable`)
    /// that no container on the node runs.
    func purge(rows: [Staging], desired: [Resource], observed: [String: NodeObservation], specs: [String: NodeSpec], store: StateStore, fence: Fence?) async {
        let models = Dictionary(desired.compactMap { r in r.model.map { (r.name, $0) } }, uniquingKeysWith: { a, _ in a })
        // Paths a kept version lists stay (the same file may serve both): the same for every row.
        let keptPaths = Set(models.flatMap { name, m in
            m.versions.filter { v in v.isStaged && !StagingPlan.purgeable(model: name, version: v.version, desired: desired) }.flatMap(\.artifacts).map(\.path)
        })
        for row in rows where row.state != .purged {
            let key = Self.key(row.node, row.key)
            guard let spec = specs[row.node], running[key] == nil, !purging.contains(key),
                  (purgeRetry[key]?.after ?? .distantPast) <= Date(),
                  StagingPlan.purgeable(model: row.model, version: row.version, desired: desired),
                  case .reachable(let containers)? = observed[row.node],
                  // A container whose deployment is gone (being removed) counts as this model's: wait for it.
                  !containers.contains(where: { $0.modelVersion == row.version && (desiredModel(of: $0, desired) ?? row.model) == row.model }) else { continue }
            // The paths: from the model's listing of the version or, for a version no longer
            // listed, from the stored revision that last listed it with the files staged here.
            let listed = models[row.model]?.version(row.version)
            guard let version = listed ?? removedVersion(row, store: store), version.isStaged else { continue }
            // The node a version is copied from holds the originals: they are the operator's, not Berth's copies.
            if version.source?.node == row.node { continue }
            let paths = version.artifacts.map(\.path).filter { !keptPaths.contains($0) }
            if await fence?() != nil { return }
            // The row stops claiming the files before the first byte is overwritten: a controller
            // killed mid-purge leaves a row no replica starts on, and the next one purges again
            // (or, if the version is needed after all, stages it again, re-hashing what is there).
            var marked = row
            marked.state = .failed
            marked.updatedAt = Date()
            marked.detail = "purging: files being overwritten and removed (staged again before serving)"
            guard (try? store.record(stagings: [marked])) != nil else { continue }
            purging.insert(key)
            defer { purging.remove(key) }
            func failed(_ message: String) {
                let attempts = (purgeRetry[key]?.attempts ?? 0) + 1
                purgeRetry[key] = (attempts, Date().addingTimeInterval(Self.retryDelay(attempt: attempts)))
                events.append(Notice(kind: "node", name: row.node, warning: true, reason: .artifactsPurgedFromNode,
                                     message: message + String(format: " (attempt %d; next in %.0f s)", attempts, Self.retryDelay(attempt: attempts))))
            }
            do {
                let client = try await pool.client(for: spec.engine)
                let image = try await purgeImage(for: version, listed: listed != nil, model: models[row.model], client: client)
                let report = try await ArtifactStager.purgeOnNode(client, root: spec.modelStorage.modelRoot, paths: paths,
                                                                  image: image, passes: settings.purgePasses)
                let now = Date()
                if let failure = report.failure {
                    failed("\(row.key) on \(row.node): purge stopped: \(failure)")
                    continue
                }
                purgeRetry[key] = nil
                var purged = row
                purged.state = .purged
                purged.bytesDone = 0
                purged.updatedAt = now
                purged.detail = "purged: \(report.files) file(s), \(Self.size(report.bytes)) overwritten \(settings.purgePasses) times and removed"
                let marks = version.artifacts.map {
                    Verification(model: row.model, version: row.version, path: $0.path, node: row.node, expected: $0.sha256, actual: nil,
                                 ok: false, detail: "purged from \(row.node); staged again before serving it", verifiedAt: now)
                }
                try? store.record(stagings: [purged], verifications: marks)
                events.append(Notice(kind: "node", name: row.node, warning: false, reason: .artifactsPurgedFromNode,
                                     message: "\(row.key) on \(row.node): \(report.files) file(s), \(Self.size(report.bytes)) overwritten "
                                        + "\(settings.purgePasses) times and removed ("
                                        + (listed == nil ? "removed from the manifest; paths from its last stored revision)" : "no longer among the versions kept)")))
            } catch {
                failed("\(row.key) on \(row.node): purge could not run: \(error)")
            }
        }
    }

    func desiredModel(of container: ObservedContainer, _ desired: [Resource]) -> String? {
        desired.first { $0.kind == .deployment && $0.name == container.deployment }?.deployment?.model
    }
}
