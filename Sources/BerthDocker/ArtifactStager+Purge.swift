import BerthModel
import BerthRuntime
import Foundation

extension ArtifactStager {
    /// Overwrites and removes files under a model root, as `ArtifactPurge` does here: random
    /// bytes on every pass but the last, zeros on the last, synced after each, then unlinked.
    /// Arguments: PASSES ROOT PATH…; a partial file of each path goes too. Output: `purged PATH
    /// BYTES` per file, then `done`, or `fail PATH WHY`.
    public static let purgeScript = #"""
        set -u
        passes=$1; root=$2; shift 2
        for p in "$@"; do
            for f in "$root/$p" "$root/$p.berth-partial"; do
                [ -f "$f" ] || continue
                size=$(stat -c %s "$f" 2>/dev/null || wc -c < "$f")
                i=1
                while [ $i -le "$passes" ]; do
                    if [ $i -lt "$passes" ]; then src=/dev/urandom; else src=/dev/zero; fi
                    head -c "$size" "$src" | dd of="$f" conv=notrunc bs=1048576 2>/dev/null || { echo "fail $p overwrite pass $i"; exit 3; }
                    sync "$f" 2>/dev/null || sync
                    i=$((i + 1))
                done
                rm -f "$f" || { echo "fail $p cannot remove"; exit 3; }
                echo "purged $p $size"
            done
        done
        echo done
        """#

    /// What a node purge did: bytes overwritten and removed, or why it stopped.
    public struct PurgeReport: Sendable, Hashable {
        public var files = 0
        public var bytes: Int64 = 0
        public var failure: String?
    }

    public static func parsePurge(_ output: String) -> PurgeReport {
        var report = PurgeReport()
        var finished = false
        for line in output.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            switch f.first {
            case "purged" where f.count >= 3:
                report.files += 1
                report.bytes += Int64(f[f.count - 1]) ?? 0
            case "fail": report.failure = f.dropFirst().joined(separator: " ")
            case "done": finished = true
            default: continue
            }
        }
        if !finished, report.failure == nil { report.failure = "the purge ended without a result" }
        return report
    }

    /// Purges `paths` (relative to the node's model root) on a node, in a short-lived container
    /// of `image` with no network.
    public static func purgeOnNode(_ client: DockerClient, root: String, paths: [String], image: String, passes: Int = 3) async throws -> PurgeReport {
        let spec = TaskContainer.spec(image: image, script: purgeScript, name: "berth-purge", arguments: [String(max(1, passes)), root] + paths,
                                      labels: [taskLabel: "purge"], network: "none", binds: ["\(root):\(root):rw"])
        return try await TaskContainer.run(client, kind: "purge", spec: spec) { id in
            _ = try await client.waitContainer(id)
            return parsePurge(try await client.logs(id, tail: paths.count * 2 + 10))
        }
    }
}
