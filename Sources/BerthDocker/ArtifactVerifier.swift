import BerthModel
import Crypto
import Foundation

/// Checks model artifacts against the sha256 their manifest gives, reading each file in chunks
/// (a 600 GB model is never held in memory).
public enum ArtifactVerifier {
    public static let chunkBytes = 4 << 20

    /// The outcome for one file.
    public struct Result: Sendable, Hashable {
        public var path: String
        public var expected: String
        /// nil when the file could not be read.
        public var actual: String?
        /// `missing`, `unreadable: …`, `sha256 mismatch`, or empty when it matches.
        public var problem: String

        public var ok: Bool { problem.isEmpty }
    }

    /// The sha256 of a file, read `chunkBytes` at a time.
    public static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: chunkBytes), !chunk.isEmpty {
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Verifies every artifact of `version` on this machine's filesystem.
    public static func verifyLocally(_ version: ModelVersion) -> [Result] {
        version.artifacts.map { artifact in
            guard FileManager.default.fileExists(atPath: artifact.path) else {
                return Result(path: artifact.path, expected: artifact.sha256, actual: nil, problem: "missing")
            }
            do {
                let actual = try sha256(ofFile: artifact.path)
                return Result(path: artifact.path, expected: artifact.sha256, actual: actual, problem: actual == artifact.sha256 ? "" : "sha256 mismatch")
            } catch {
                return Result(path: artifact.path, expected: artifact.sha256, actual: nil, problem: "unreadable: \(error.localizedDescription)")
            }
        }
    }
}

extension ArtifactVerifier {
    /// The label of Berth's short-lived task containers (`verify`).
    public static let verifyLabel = "io.berth.task"

    /// Removes verify containers left behind by a verifier killed mid-way (a controller SIGKILLed
    /// during an image round): exited ones older than 10 minutes (a live verifier reads its
    /// output within seconds), and any older than an hour.
    public static func sweepVerifyContainers(_ client: DockerClient, now: Date = Date()) async {
        guard let left = try? await client.listContainers(labels: ["\(verifyLabel)=verify"]) else { return }
        for c in left {
            let age = now.timeIntervalSince1970 - TimeInterval(c.created)
            guard (!c.isAlive && age > 600) || age > 3600 else { continue }
            try? await client.removeContainer(c.id, force: true)
        }
    }

    /// Verifies every artifact of `version` on a node without an agent: a short-lived container of
    /// `image` (one with `sha256sum` or `openssl`, such as the version's own image) runs with each artifact's
    /// folder mounted read-only and no network, and its output is compared with the manifest.
    public static func verifyOnNode(_ client: DockerClient, _ version: ModelVersion, image: String? = nil) async throws -> [Result] {
        let paths = version.artifacts.map(\.path)
        guard !paths.isEmpty else { return [] }
        let folders = Array(Set(paths.map { ($0 as NSString).deletingLastPathComponent })).sorted()
        // Paths travel as arguments, never inside the script: no quoting to get wrong. An
        // unreadable file prints only its path (no hash); each file gets its own line.
        let script = ArtifactStager.digest + #"for f in "$@"; do if [ -e "$f" ]; then h=$(digest < "$f"); echo "${h%% *}  $f"; else echo "missing  $f"; fi; done"#
        // Verify containers left by a verifier that was killed are swept before a new one starts.
        await sweepVerifyContainers(client)
        let spec = TaskContainer.spec(image: image ?? version.image, script: script, name: "berth-verify", arguments: paths,
                                      labels: [verifyLabel: "verify"], network: "none", binds: folders.map { "\($0):\($0):ro" })
        let output = try await TaskContainer.run(client, kind: "verify", spec: spec) { id in
            _ = try await client.waitContainer(id)
            return try await client.logs(id, tail: paths.count * 4 + 10)
        }
        var seen: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2 else { continue }
            seen[parts[1].trimmingCharacters(in: .whitespaces)] = String(parts[0])
        }
        return version.artifacts.map { a in
            switch seen[a.path] {
            case nil: Result(path: a.path, expected: a.sha256, actual: nil, problem: "unreadable: no hash in the verifier's output")
            case "missing": Result(path: a.path, expected: a.sha256, actual: nil, problem: "missing")
            case let actual?: Result(path: a.path, expected: a.sha256, actual: actual, problem: actual == a.sha256 ? "" : "sha256 mismatch")
            }
        }
    }
}
