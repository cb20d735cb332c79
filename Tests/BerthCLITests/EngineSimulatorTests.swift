import BerthTesting
import Foundation
import Testing

/// `berth-engine-sim` is a Docker engine as far as the controller can tell: the real controller
/// converges a fleet on its engines over HTTP, replaces a replica whose process dies, and fails
/// a crashed engine's replicas over to a standby. No Docker needed, so it always runs.
@Suite("The engine simulator", .serialized)
struct EngineSimulatorTests {
    let dir = NSTemporaryDirectory() + "berth-engine-sim-\(UUID().uuidString.prefix(8))"
    var state: String { dir + "/berth.db" }

    /// The simulator, on addresses and ports no other test uses.
    final class Simulator {
        let pid: pid_t
        let control: String
        let log: String
        /// The port every engine listens on, at its own address.
        let enginePort: Int

        init(folder: String, nodes: Int, standby: Int) throws {
            // The control API on a port the kernel picks (a pick in 23000–23899 met the local
            // cluster's TLS proxies on 23751–23753 now and then); the engines and replicas on
            // addresses of their own, from a random base.
            let port = 23_000 + Int.random(in: 0..<900)
            control = "127.0.0.1:\(unusedLoopbackPort())"
            enginePort = port + 1000
            log = folder + "/sim.log"
            let binary = BerthProcess.binary.deletingLastPathComponent().appendingPathComponent("berth-engine-sim").path
            pid = try Spawn.start([binary, "--nodes", "\(nodes)", "--standby", "\(standby)", "--gpus", "2", "--first-address", "127.1.\(port % 200 + 20).1",
                                   "--port", "\(enginePort)", "--replica-ports", "\(port + 2000)", "--control", control, "--nodes-file", folder + "/nodes.yaml",
                                   "--ready-after-ms", "300"], stdout: log)
            waitUntil(10) { FileManager.default.fileExists(atPath: folder + "/nodes.yaml") && BerthProcess.httpStatus("http://\(self.control)/engines") == 200 }
        }

        func post(_ path: String) throws -> String {
            try BerthProcess.tool("/usr/bin/curl", ["-s", "-m", "5", "-X", "POST", "http://\(control)\(path)"])
        }

        /// The Engine API of engine `index` (0-based).
        func engineURL(_ index: Int) -> String { "http://\(engines()[index]["address"] as! String):\(enginePort)" }

        func engines() -> [[String: Any]] {
            let text = (try? BerthProcess.get("http://\(control)/engines")) ?? "[]"
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] ?? []
        }

        deinit {
            kill(pid, SIGTERM)
            _ = Spawn.wait(pid)
        }
    }

    func fleet(replicas: Int) -> String {
        let path = dir + "/fleet.yaml"
        write("""
            apiVersion: berth/v1
            kind: Model
            metadata: { name: sim }
            spec:
              versions:
                - { version: v1, image: "sim.local/berth/model:v1", parameters: 1.5B, precision: bf16 }
            ---
            apiVersion: berth/v1
            kind: Deployment
            metadata: { name: chat }
            spec:
              model: sim
              version: v1
              replicas: \(replicas)
              gpusPerReplica: 1

            """, to: path)
        return path
    }

    func deployment() throws -> (ready: Int, desired: Int) {
        let text = try BerthProcess.run(["status", "-o", "json"], state: state).stdout
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        let d = (object?["deployments"] as? [[String: Any]])?.first
        return (d?["ready"] as? Int ?? 0, d?["desired"] as? Int ?? -1)
    }

    @Test func theRealController_converges_replacesADeadReplica_andFailsACrashedEngineOver() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sim = try Simulator(folder: dir, nodes: 4, standby: 1)
        #expect(sim.engines().count == 4, "\((try? String(contentsOfFile: sim.log, encoding: .utf8)) ?? "")")
        let nodes = dir + "/nodes.yaml"
        #expect(try BerthProcess.run(["apply", "-f", nodes], state: state).code == 0)
        let controller = try ControllerProcess(state: state, folder: dir, arguments: ["--interval", "1", "--node-check-interval", "1"])
        defer { controller.stop() }

        let applied = try BerthProcess.run(["apply", "-f", nodes, "-f", fleet(replicas: 6), "--wait", "--timeout", "60"], state: state)
        #expect(applied.code == 0, "\(applied.stderr)\n\(controller.text.suffix(2000))")
        #expect(try deployment() == (6, 6))
        let placed = sim.engines().map { ($0["name"] as? String ?? "", $0["running"] as? Int ?? 0) }
        #expect(placed.filter { $0.1 > 0 }.count == 3 && placed.last?.1 == 0, "spread over the three active nodes, none on the standby: \(placed)")

        // A replica's process dies: the engine says so, the controller starts it again.
        let listed = try BerthProcess.get(sim.engineURL(0) + "/containers/json")
        let victim = try #require((try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]])?.first?["Id"] as? String)
        #expect(try sim.post("/engines/\(sim.engines()[0]["name"] as! String)/containers/\(victim)/die").contains("\"up\""))
        #expect(waitUntil(15) { controller.text.contains("start berth-chat-") } != nil, "\(controller.text.suffix(2000))")
        #expect(waitUntil(15) { (try? deployment()) ?? (0, 0) == (6, 6) } != nil)

        // An engine crashes: its node fails, the standby is promoted, every replica serves again.
        let crashed = sim.engines()[1]["name"] as! String
        #expect(try sim.post("/engines/\(crashed)/crash").contains("\"down\""))
        let promoted = waitUntil(60) { controller.text.contains("PromotionSucceeded") }
        #expect(promoted != nil, "\(controller.text.suffix(3000))")
        let status = (try? BerthProcess.run(["status"], state: state).stdout) ?? ""
        #expect(waitUntil(15) { (try? deployment()) ?? (0, 0) == (6, 6) } != nil, "\(status)")
        let after = sim.engines()
        #expect((after.last?["running"] as? Int ?? 0) > 0 && after[1]["state"] as? String == "down", "the standby took the crashed engine's replicas: \(after)")
    }

    /// A pass waits at most a second for the listing of a node it has seen before; a hung
    /// engine's node is planned as last seen and sent nothing, so the repair of a replica on
    /// another node does not wait for the hung engine's 5 s observe timeout (it did: 5.0 s).
    @Test func aHungEngine_delaysTheOthers_byNoMoreThanASecond() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sim = try Simulator(folder: dir, nodes: 4, standby: 0)
        let nodes = dir + "/nodes.yaml"
        #expect(try BerthProcess.run(["apply", "-f", nodes], state: state).code == 0)
        let controller = try ControllerProcess(state: state, folder: dir, arguments: ["--node-failure-threshold", "1000"])
        defer { controller.stop() }
        let applied = try BerthProcess.run(["apply", "-f", nodes, "-f", fleet(replicas: 6), "--wait", "--timeout", "60"], state: state)
        #expect(applied.code == 0, "\(applied.stderr)")

        // sim-0002 accepts calls and never answers them; a replica's process dies on sim-0001.
        let engines = sim.engines()
        #expect(try sim.post("/engines/\(engines[1]["name"] as! String)/hang").contains("\"hung\""))
        let listed = try BerthProcess.get(sim.engineURL(0) + "/containers/json")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]])
        let victim = try #require(rows.first?["Names"] as? [String]).first!.dropFirst()
        #expect(try sim.post("/engines/\(engines[0]["name"] as! String)/containers/\(victim)/die").contains("\"up\""))
        // Started again by the pass its death wakes, which waits a second for the hung engine.
        let restarted = waitUntil(15) { controller.text.contains("start \(victim) on") }
        #expect(restarted != nil, "\(controller.text.suffix(3000))")
        #expect((restarted ?? 99) < 4.5, "the hung engine held the pass up (its observe timeout is 5 s): \(restarted ?? -1) s")
        #expect(controller.text.contains("has not answered its listing"), "the late engine is said: \(controller.text.suffix(2000))")
    }

    @Test func waitingOnAFleetOfManyDeployments_countsThemInsteadOfNamingEach() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sim = try Simulator(folder: dir, nodes: 4, standby: 0)
        #expect(sim.engines().count == 4)
        let nodes = dir + "/nodes.yaml"
        #expect(try BerthProcess.run(["apply", "-f", nodes], state: state).code == 0)
        let controller = try ControllerProcess(state: state, folder: dir)
        defer { controller.stop() }
        var text = try String(contentsOfFile: fleet(replicas: 1), encoding: .utf8)
        let one = text[text.range(of: "---\n")!.lowerBound...]
        for n in 2...7 { text += one.replacingOccurrences(of: "name: chat }", with: "name: chat-\(n) }") }
        write(text, to: dir + "/many.yaml")
        let applied = try BerthProcess.run(["apply", "-f", nodes, "-f", dir + "/many.yaml", "--wait", "--timeout", "60"], state: state)
        #expect(applied.code == 0, "\(applied.stderr)")
        #expect(applied.stderr.contains("7/7 deployments converged, 7/7 replicas ready on their version"), "\(applied.stderr)")
        #expect(!applied.stderr.contains("chat-5 1/1 ✓"), "seven deployments are counted, not listed: \(applied.stderr)")
    }

    @Test func anEngineAnswersAsDockerDoes_conflictsAndMissingThings() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sim = try Simulator(folder: dir, nodes: 1, standby: 0)
        let engine = sim.engineURL(0)
        func call(_ method: String, _ path: String, _ body: String? = nil) throws -> (code: Int, body: String) {
            let out = try BerthProcess.tool("/usr/bin/curl", ["-s", "-m", "5", "-X", method, "-w", "\n%{http_code}", "-H", "Content-Type: application/json"]
                                            + (body.map { ["-d", $0] } ?? []) + [engine + path])
            let lines = out.split(separator: "\n", omittingEmptySubsequences: false)
            return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
        }
        let spec = #"{"Image":"m:v1","Labels":{"io.berth.managed-by":"berth"}}"#
        #expect(try call("POST", "/v1.47/containers/create?name=a", spec).code == 404, "no image yet")
        #expect(try call("POST", "/images/create?fromImage=m&tag=v1").body.contains("Downloaded newer image for m:v1"))
        let created = try call("POST", "/v1.47/containers/create?name=a", spec)
        #expect(created.code == 201 && created.body.contains("\"Id\""), "\(created)")
        let again = try call("POST", "/containers/create?name=a", spec)
        #expect(again.code == 409 && again.body.contains("is already in use by container"), "\(again)")
        #expect(try call("GET", "/containers/nope/json").code == 404)
        #expect(try call("GET", "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22io.berth.managed-by%3Dberth%22%5D%7D").body.contains("\"/a\""))
        #expect(try call("GET", "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22other%22%5D%7D").body == "[]")
        #expect(try call("DELETE", "/images/m:v1").code == 409, "in use by a container")
        #expect(try call("DELETE", "/containers/a?force=1").code == 204)
        #expect(try call("DELETE", "/images/m:v1").code == 200)
    }
}
