import BerthTesting
import Foundation
import Testing

/// GPU health on the local cluster: the nodes have no GPU, so the controller's checks run an
/// image whose `nvidia-smi` answers what the test wrote (`--gpu-check-image`; the nodes' runtime
/// is runc, so the image's own nvidia-smi is the one asked, in a container on each node).
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    static let healthImage = "berth-test/fake-nvidia-smi:health"

    /// `healthImage` on `node`, its nvidia-smi printing `answer` for any `--query-gpu` query.
    static func fakeHealthImage(node: Int, answer: String, dir: String) throws {
        let root = dir + "/smi-\(node)-\(UUID().uuidString.prefix(6))"
        for folder in ["/bin", "/usr/bin"] { try FileManager.default.createDirectory(atPath: root + folder, withIntermediateDirectories: true) }
        _ = try Spawn.run(["/bin/cp", "/bin/busybox", root + "/bin/busybox"])
        for tool in ["sh", "cat"] { try FileManager.default.createSymbolicLink(atPath: root + "/bin/" + tool, withDestinationPath: "busybox") }
        try answer.write(toFile: root + "/answer.csv", atomically: true, encoding: .utf8)
        let smi = "#!/bin/sh\ncase \"$1\" in --query-gpu=index,uuid,ecc*) cat /answer.csv ;; *) echo \"unexpected: $*\"; exit 2 ;; esac\n"
        try smi.write(toFile: root + "/usr/bin/nvidia-smi", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root + "/usr/bin/nvidia-smi")
        _ = try Spawn.run(["/bin/tar", "-C", root, "-cf", root + ".tar", "."])
        _ = try LocalCluster.docker(node, ["import", "--change", "ENV PATH=/usr/bin:/bin", root + ".tar", healthImage])
    }

    static func healthyAnswer(eccOnGPU0: Int = 0) -> String {
        (0..<4).map { "\($0), GPU-\($0)a1b2c3d-0000-4000-8000-00000000000\($0), \($0 == 0 ? eccOnGPU0 : 0), No, No" }.joined(separator: "\n") + "\n"
    }

    /// node → GPUs of running Berth containers there.
    static func gpusInUse(_ node: Int) throws -> [String] {
        try LocalCluster.docker(node, ["ps", "--filter", "label=io.berth.deployment", "--format", "{{.Label \"io.berth.gpus\"}}"])
            .split(separator: "\n").map(String.init)
    }

    @Test func aGPUWithUncorrectableECCErrors_goesOutOfService_itsReplicaMoves_untilAnOperatorReturnsIt() throws {
        try LocalCluster.removeBerthContainers()
        defer {
            cleanUp()
            for n in 1...3 { _ = try? LocalCluster.docker(n, ["rmi", "-f", Self.healthImage]) }
        }
        for n in 1...3 { try Self.fakeHealthImage(node: n, answer: Self.healthyAnswer(), dir: dir) }
        let controller = try startController(on: fleet(), arguments: ["--gpu-check-image", Self.healthImage, "--image-interval", "1"])
        defer { controller.stop() }
        let before = try Self.gpusInUse(1)
        #expect(before.contains("0"), "a replica uses node-1's GPU 0: \(before)")
        // Healthy GPUs: rounds pass and nothing is taken out.
        Thread.sleep(forTimeInterval: 3)
        #expect(try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("GPUs out of service") == false)

        // GPU 0 of node-1 reports uncorrectable ECC errors.
        try Self.fakeHealthImage(node: 1, answer: Self.healthyAnswer(eccOnGPU0: 2), dir: dir)
        let held = waitUntil(30) { (try? BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("UncorrectableECCErrors")) == true }
        #expect(held != nil, "\(controller.text.suffix(3000))")
        // Its replica moves off it, successor first; the deployment ends fully ready again.
        let moved = waitUntil(60) { (try? Self.gpusInUse(1).contains("0")) == false }
        #expect(moved != nil, "\((try? Self.gpusInUse(1)) ?? [])\n\(controller.text.suffix(3000))")
        #expect(waitUntil(60) { Self.readyChatCount() == 2 } != nil)
        let described = try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout
        #expect(described.contains("GPUsOutOfService") && described.contains("2 uncorrectable ECC error(s) since the driver loaded"), "\(described)")
        #expect(described.contains("GPUOutOfService"), "the event: \(described)")
        let status = try BerthProcess.run(["status", "-o", "json"], state: state).stdout
        // The operator's first look shows it too.
        let table = try BerthProcess.run(["status"], state: state).stdout
        #expect(table.contains("GPUsOutOfService: GPU 0"), "\(table)")
        let nodes = try BerthProcess.run(["get", "nodes"], state: state).stdout
        #expect(nodes.contains("(1 out of service)"), "\(nodes)")
        let compact = status.filter { !$0.isWhitespace }
        #expect(compact.contains("\"gpusOutOfService\":[0]"), "\(status.prefix(3000))")

        // Fixed (a reset cleared the counters): it stays out until an operator returns it.
        try Self.fakeHealthImage(node: 1, answer: Self.healthyAnswer(), dir: dir)
        Thread.sleep(forTimeInterval: 3)
        #expect(try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("GPUs out of service"))
        let back = try BerthProcess.run(["node", "gpu", "node-1", "0", "--uncordon", "-m", "GPU reset, counters clear", "--author", "ops"], state: state)
        #expect(back.code == 0, "\(back.stderr)")
        Thread.sleep(forTimeInterval: 3)
        let after = try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout
        #expect(!after.contains("GPUs out of service") && after.contains("GPU 0 returned to service by ops: GPU reset, counters clear"), "\(after)")
        #expect(!after.contains("Ready:       True (GPUsOutOfService)"), "\(after)")

        // A GPU vanishes from nvidia-smi's list (fallen off the bus): out as GPUMissing.
        try Self.fakeHealthImage(node: 1, answer: Self.healthyAnswer().split(separator: "\n").prefix(3).joined(separator: "\n") + "\n", dir: dir)
        let missing = waitUntil(30) { (try? BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("GPUMissing")) == true }
        #expect(missing != nil, "\(controller.text.suffix(2000))")
        #expect(try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("declared, but nvidia-smi lists no GPU 3 (3 found)"))
    }

    /// A node's DCGM exporter (here a file served by busybox httpd in its format): per-GPU figures
    /// on the controller's /metrics, and a hardware XID takes that GPU out of service.
    @Test func aDCGMExporter_feedsPerGPUMetrics_andAnXIDTakesItsGPUOut() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let web = dir + "/dcgm"
        try FileManager.default.createDirectory(atPath: web, withIntermediateDirectories: true)
        func page(xidOnGPU1: Int) -> String {
            (0..<4).map { g in
                "DCGM_FI_DEV_GPU_UTIL{gpu=\"\(g)\",UUID=\"GPU-\(g)\"} \(10 * (g + 1))\n"
                    + "DCGM_FI_DEV_FB_USED{gpu=\"\(g)\",UUID=\"GPU-\(g)\"} 1024\n"
                    + "DCGM_FI_DEV_XID_ERRORS{gpu=\"\(g)\",UUID=\"GPU-\(g)\",err_code=\"0\"} \(g == 1 ? xidOnGPU1 : 0)\n"
            }.joined()
        }
        write(page(xidOnGPU1: 0), to: web + "/metrics")
        let port = unusedLoopbackPort()
        let httpd = try Spawn.start(["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:\(port)", "-h", web], stdout: dir + "/httpd.log")
        defer { kill(httpd, SIGTERM); Spawn.wait(httpd) }
        #expect(waitUntil(5) { BerthProcess.httpStatus("http://127.0.0.1:\(port)/metrics") == 200 } != nil)

        // node-1 declares the exporter.
        let nodes = try String(contentsOfFile: LocalCluster.nodes, encoding: .utf8)
        let marked = nodes.replacingOccurrences(of: "models/node-1, minFreeGiB: 1 }\n", with: "models/node-1, minFreeGiB: 1 }\n  dcgmExporter: \"127.0.0.1:\(port)\"\n")
        #expect(marked != nodes)
        write(marked, to: dir + "/nodes.yaml")
        let fleetFile = fleet()
        #expect(try BerthProcess.run(["apply", "-f", dir + "/nodes.yaml", "-f", fleetFile], state: state).code == 0)
        let api = "127.0.0.1:\(unusedLoopbackPort())"
        let controller = try ControllerProcess(state: state, folder: dir, listen: api, arguments: ["--telemetry-interval", "1"])
        defer { controller.stop() }
        let metricsSeen = waitUntil(30) { ((try? BerthProcess.get("http://\(api)/metrics")) ?? "").contains("berth_gpu_utilization{node=\"node-1\",gpu=\"3\"} 0.4") }
        #expect(metricsSeen != nil, "\(((try? BerthProcess.get("http://\(api)/metrics")) ?? "").split(separator: "\n").filter { $0.contains("gpu") }.joined(separator: "\n"))")
        let metrics = try BerthProcess.get("http://\(api)/metrics")
        #expect(metrics.contains("berth_node_gpu_utilization{node=\"node-1\"} 0.25"), "the node's mean is DCGM's")
        #expect(metrics.contains("berth_gpu_last_xid{node=\"node-1\",gpu=\"1\"} 0"))

        // An application's XID takes nothing out; a GPU fallen off the bus (79) does.
        write(page(xidOnGPU1: 13), to: web + "/metrics")
        Thread.sleep(forTimeInterval: 3)
        #expect(!(try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("GPUs out of service")))
        write(page(xidOnGPU1: 79), to: web + "/metrics")
        let out = waitUntil(30) { (try? BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("XID 79 reported by the node's DCGM exporter")) == true }
        #expect(out != nil, "\(controller.text.suffix(2000))")
        #expect(try BerthProcess.run(["describe", "node", "node-1"], state: state).stdout.contains("XIDError"))
    }
}
