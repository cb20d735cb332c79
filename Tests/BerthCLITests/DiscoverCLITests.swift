import BerthTesting
import Foundation
import Testing

/// `berth node discover` against the local cluster, with an image whose `nvidia-smi` answers
/// from a fixture (the cluster has no GPU): the nodes' runtime is runc, so the image's own
/// nvidia-smi is the one asked, in a container on the node.
@Suite("berth node discover on the local cluster", .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "set BERTH_INTEGRATION=1 and run scripts/local-cluster up"))
struct DiscoverCLITests {
    static let fixture = """
        0, GPU-0a1b2c3d-0000-4000-8000-000000000000, NVIDIA A100-SXM4-80GB, 81920, 535.104.05, Disabled
        1, GPU-1a1b2c3d-0000-4000-8000-000000000001, NVIDIA A100-SXM4-80GB, 81920, 535.104.05, Disabled
        2, GPU-2a1b2c3d-0000-4000-8000-000000000002, NVIDIA A100-SXM4-80GB, 81920, 535.104.05, Enabled
        3, GPU-3a1b2c3d-0000-4000-8000-000000000003, NVIDIA A100-SXM4-80GB, 81920, 535.104.05, Disabled

        """

    /// An image on node-1 with busybox and an nvidia-smi that prints `answer` (and checks it was
    /// asked the query Berth documents).
    func fakeImage(_ dir: String, answer: String, tag: String) throws -> String {
        let root = dir + "/rootfs-\(tag)"
        for folder in ["/bin", "/usr/bin"] { try FileManager.default.createDirectory(atPath: root + folder, withIntermediateDirectories: true) }
        _ = try Spawn.run(["/bin/cp", "/bin/busybox", root + "/bin/busybox"])
        for tool in ["sh", "cat"] { try FileManager.default.createSymbolicLink(atPath: root + "/bin/" + tool, withDestinationPath: "busybox") }
        try answer.write(toFile: root + "/answer.csv", atomically: true, encoding: .utf8)
        let smi = "#!/bin/sh\ncase \"$1\" in --query-gpu=index,uuid,name,memory.total,driver_version,mig.mode.current) cat /answer.csv ;; *) echo \"unexpected: $*\"; exit 2 ;; esac\n"
        try smi.write(toFile: root + "/usr/bin/nvidia-smi", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root + "/usr/bin/nvidia-smi")
        _ = try Spawn.run(["/bin/tar", "-C", root, "-cf", root + ".tar", "."])
        let image = "berth-test/fake-nvidia-smi:\(tag)"
        _ = try LocalCluster.docker(1, ["import", "--change", "ENV PATH=/usr/bin:/bin", root + ".tar", image])
        return image
    }

    @Test func discoversUUIDs_diffsAgainstTheManifest_writesANodeThatThenMatches() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let nodes = BerthProcess.root.appendingPathComponent("state/local-cluster/nodes.yaml").path
        _ = try BerthProcess.run(["apply", "-f", nodes, "-f", BerthProcess.root.appendingPathComponent("examples/local/fleet.yaml").path], state: state)
        let image = try fakeImage(dir, answer: Self.fixture, tag: "a100")
        defer { _ = try? LocalCluster.docker(1, ["rmi", "-f", image]) }

        let shown = try BerthProcess.run(["node", "discover", "node-1", "--image", image], state: state)
        #expect(shown.code == 0, "\(shown.stderr)")
        #expect(shown.stdout.hasPrefix("  gpus:") && shown.stdout.contains("GPU-2a1b2c3d-0000-4000-8000-000000000002"), "\(shown.stdout)")
        #expect(shown.stderr.contains("GPU 2 (GPU-2a1b2c3d-0000-4000-8000-000000000002) has MIG enabled"), "\(shown.stderr)")
        // The local nodes declare 4 A100s without UUIDs.
        let differs = try BerthProcess.run(["node", "discover", "node-1", "--image", image, "--diff"], state: state)
        #expect(differs.code == 1 && differs.stdout.contains("node node-1: GPU 0: no UUID declared, found GPU-0a1b2c3d"), "\(differs.stdout)\(differs.stderr)")
        let file = dir + "/node-1.yaml"
        let written = try BerthProcess.run(["node", "discover", "node-1", "--image", image, "--write", file], state: state)
        #expect(written.code == 0, "\(written.stderr)")
        let applied = try BerthProcess.run(["apply", "-f", file], state: state)
        #expect(applied.code == 0, "\(applied.stdout)\(applied.stderr)")
        let same = try BerthProcess.run(["node", "discover", "node-1", "--image", image, "--diff"], state: state)
        #expect(same.code == 0 && same.stdout.contains("match what nvidia-smi reports (4 GPU(s))"), "\(same.stdout)\(same.stderr)")
        // No container is left behind.
        #expect(try LocalCluster.docker(1, ["ps", "-aq", "--filter", "label=io.berth.task=discover"]).isEmpty)
    }

    @Test func anImageWithoutNvidiaSmi_orADriverThatFails_sayWhatIsWrong() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let nodes = BerthProcess.root.appendingPathComponent("state/local-cluster/nodes.yaml").path
        _ = try BerthProcess.run(["apply", "-f", nodes, "-f", BerthProcess.root.appendingPathComponent("examples/local/fleet.yaml").path], state: state)
        _ = try LocalCluster.docker(1, ["pull", "-q", LocalCluster.imageV1])
        let none = try BerthProcess.run(["node", "discover", "node-1", "--image", LocalCluster.imageV1], state: state)
        #expect(none.code == 70 && none.stderr.contains("no nvidia-smi in image") && none.stderr.contains("runtime is runc"), "\(none.stderr)")
        let image = try fakeImage(dir, answer: "No devices were found\n", tag: "nodevices")
        defer { _ = try? LocalCluster.docker(1, ["rmi", "-f", image]) }
        let empty = try BerthProcess.run(["node", "discover", "node-1", "--image", image], state: state)
        #expect(empty.code == 6 && empty.stderr.contains("found no GPU"), "\(empty.stderr)")
        let unknown = try BerthProcess.run(["node", "discover", "node-9", "--image", image], state: state)
        #expect(unknown.code == 4 && unknown.stderr.contains("no node \"node-9\""), "\(unknown.stderr)")
    }
}
