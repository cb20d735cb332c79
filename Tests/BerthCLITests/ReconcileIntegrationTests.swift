import Foundation
import Testing

/// `berth reconcile` against the local cluster. It removes every Berth container its fleet does
/// not want, so it runs on its own: `scripts/test` runs this suite after the others.
@Suite("berth reconcile on the local cluster", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["BERTH_RECONCILE_INTEGRATION"] == "1", "run by scripts/test after the other suites"))
struct ReconcileIntegrationTests {
    let nodes = BerthProcess.root.appendingPathComponent("state/local-cluster/nodes.yaml").path
    let fleet = BerthProcess.root.appendingPathComponent("examples/local/fleet.yaml").path

    func docker(_ node: Int, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/docker")
        p.arguments = ["-H", "unix:///run/berth-local/node-\(node)/docker.sock"] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Leaves the cluster's nodes without Berth containers (`scripts/demo` may have left its fleet running).
    func removeBerthContainers() throws {
        for n in 1...3 {
            let ids = try docker(n, ["ps", "-aq", "--filter", "label=io.berth.managed-by=berth"]).split(separator: "\n").map(String.init)
            if !ids.isEmpty { _ = try docker(n, ["rm", "-f"] + ids) }
        }
    }

    /// `name port version` of every running Berth container on the active nodes.
    func running() throws -> [String] {
        try (1...2).flatMap { n in
            try docker(n, ["ps", "--filter", "label=io.berth.managed-by=berth", "--format", "{{.Names}} {{.Label \"io.berth.host-port\"}} {{.Label \"io.berth.model-version\"}}"])
                .split(separator: "\n").map(String.init)
        }.sorted()
    }

    func answers(_ port: String) -> String {
        (try? BerthProcess.curl("http://127.0.0.1:\(port)/v2/models/standin/infer")) ?? ""
    }

    @Test func converges_replacesKilled_rollsVersions_leavesForeignContainersAlone() throws {
        try removeBerthContainers()
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        #expect(try BerthProcess.run(["apply", "-f", nodes, "-f", fleet], state: state).code == 0)
        let foreign = try docker(1, ["run", "-d", "--name", "berth-chat-0-foreign", "--network", "none", "127.0.0.1:5000/berth/standin:v1"])
        defer { _ = try? docker(1, ["rm", "-f", foreign]) }

        let first = try BerthProcess.run(["reconcile"], state: state)
        #expect(first.code == 0, "\(first.stdout)\(first.stderr)")
        #expect(first.stdout.contains("3 of 3 action(s) done"))
        let live = try running()
        #expect(live.count == 3, "\(live)")
        Thread.sleep(forTimeInterval: 1.5)  // the example's load delay
        for line in live {
            let parts = line.split(separator: " ")
            #expect(answers(String(parts[1])).contains("standin@\(parts[2])"), "\(line)")
        }
        #expect(try BerthProcess.run(["reconcile"], state: state).stdout.contains("nothing to do: 3 container(s) match"))

        // A replica removed behind Berth's back comes back.
        let victim = String(live[0].split(separator: " ")[0])
        for n in 1...2 { _ = try docker(n, ["rm", "-f", victim]) }
        let healed = try BerthProcess.run(["reconcile"], state: state)
        #expect(healed.stdout.contains("create \(victim)"), "\(healed.stdout)")
        #expect(try running().count == 3)

        // chat to v2: one replica per pass (maxUnavailable 0 → one at a time, the rest serving).
        let text = try String(contentsOfFile: fleet, encoding: .utf8).replacingOccurrences(of: "  version: v1\n  replicas: 2", with: "  version: v2\n  replicas: 2")
        write(text, to: dir + "/v2.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/v2.yaml"], state: state)
        var passes = 0
        while passes < 6, try running().contains(where: { $0.hasSuffix(" v1") }) {
            let pass = try BerthProcess.run(["reconcile"], state: state)
            #expect(pass.stdout.components(separatedBy: "\ncreate ").count + (pass.stdout.hasPrefix("create ") ? 1 : 0) <= 2, "at most one replacement per pass: \(pass.stdout)")
            #expect(try running().count >= 2, "never below replicas - 1 serving")
            passes += 1
            Thread.sleep(forTimeInterval: 0.5)
        }
        let final = try running()
        #expect(final.allSatisfy { $0.hasSuffix(" v2") }, "\(final)")
        #expect(passes >= 2, "two replicas rolled one at a time")

        // Removing the deployments removes their containers; the foreign one stays.
        write(try String(contentsOfFile: nodes, encoding: .utf8), to: dir + "/only-nodes.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/only-nodes.yaml", "--prune"], state: state)
        let cleanup = try BerthProcess.run(["reconcile"], state: state)
        #expect(cleanup.stdout.contains("deployment chat is gone"))
        #expect(try running().isEmpty)
        #expect(try docker(1, ["inspect", "-f", "{{.Name}}", foreign]) == "/berth-chat-0-foreign")
    }

    @Test func controller_replacesAKilledReplicaWithinASecond_rollsAChange_andStopsCleanly() throws {
        try removeBerthContainers()
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        #expect(try BerthProcess.run(["apply", "-f", nodes, "-f", fleet], state: state).code == 0)
        let controller = Process()
        controller.executableURL = BerthProcess.binary
        controller.arguments = ["controller", "--interval", "30", "--state", state]
        let log = dir + "/controller.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        controller.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        controller.standardError = FileHandle.nullDevice
        try controller.run()
        defer { if controller.isRunning { controller.terminate() } }

        func waitUntil(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Double? {
            let start = Date()
            while Date().timeIntervalSince(start) < seconds {
                if try condition() { return Date().timeIntervalSince(start) }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return nil
        }
        #expect(try waitUntil(20) { try running().count == 3 } != nil, "the first pass starts the fleet")

        // Kill one replica: with a 30 s interval, only the engine's event can bring the next pass.
        let victim = String(try running()[0].split(separator: " ")[0])
        for n in 1...2 { _ = try docker(n, ["rm", "-f", victim]) }
        let replaced = try waitUntil(5) { try running().count == 3 }
        #expect(replaced != nil && replaced! < 2, "replaced in \(replaced ?? -1) s")

        // A new version is rolled out by the next passes (events of its own removals wake them).
        let text = try String(contentsOfFile: fleet, encoding: .utf8).replacingOccurrences(of: "  version: v1\n  replicas: 2", with: "  version: v2\n  replicas: 2")
        write(text, to: dir + "/v2.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/v2.yaml"], state: state)
        // The controller notices the new revision without waiting for its 30 s interval.
        let rolled = try waitUntil(15) { try running().filter { $0.hasSuffix(" v2") }.count == 3 }
        let now = try running()
        #expect(rolled != nil, "\(now)")

        controller.terminate()
        controller.waitUntilExit()
        #expect(controller.terminationStatus == 0)
        #expect(try running().count == 3, "containers keep running after the controller stops")
        let text2 = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text2.contains("woken: die"), "\(text2)")
        #expect(text2.contains("stopped after"), "\(text2)")
        try removeBerthContainers()
    }
}
