import BerthTesting
import Foundation
import Testing

/// Three controllers, separate processes each in its own folder, sharing one real PostgreSQL 15.
extension LocalClusterEndToEnd {
@Suite("three controllers on one PostgreSQL")
struct HighAvailabilityEndToEndTests {
    let dir = BerthProcess.temporaryFolder()

    /// The example fleet with `chat` at `version` (and `canaries` replicas of chat-canary), without
    /// its managed gateway: three controllers on one host would each want its port, where on three
    /// hosts each has its own.
    func fleet(_ version: String, canaries: Int = 1) -> String {
        let text = ControllerEndToEndTests.chatVersion(version)(try! String(contentsOfFile: LocalCluster.fleet, encoding: .utf8))
            .replacingOccurrences(of: "  replicas: 1\n", with: "  replicas: \(canaries)\n")
        let path = dir + "/fleet-\(version)-\(canaries).yaml"
        write(text.components(separatedBy: "\n---\n").filter { !$0.contains("kind: Gateway") }.joined(separator: "\n---\n"), to: path)
        return path
    }

    /// Every Berth container on the engines, running or not: its id and the epoch it was created at.
    static func containers() throws -> [(id: String, epoch: String)] {
        try (1...3).flatMap { n in
            try LocalCluster.docker(n, ["ps", "-a", "--no-trunc", "--filter", "label=io.berth.managed-by=berth", "--format", "{{.ID}} {{.Label \"io.berth.epoch\"}}"])
                .split(separator: "\n").map { line in
                    let parts = line.split(separator: " ").map(String.init)
                    return (parts[0], parts.count > 1 ? parts[1] : "")
                }
        }
    }

    /// Replica slots running more than one container, across the engines, with their epochs.
    static func doubledSlots() throws -> [String] {
        var seen: [String: [String]] = [:]
        for n in 1...3 {
            for line in try LocalCluster.docker(n, ["ps", "--filter", "label=io.berth.managed-by=berth", "--format",
                                                      "{{.Label \"io.berth.deployment\"}}/{{.Label \"io.berth.replica\"}} {{.Label \"io.berth.epoch\"}}"]).split(separator: "\n") {
                let parts = line.split(separator: " ").map(String.init)
                seen[parts[0], default: []].append("epoch " + (parts.count > 1 ? parts[1] : "?"))
            }
        }
        return seen.filter { $0.value.count > 1 }.map { "\($0.key): \($0.value.joined(separator: ", "))" }.sorted()
    }

    @Test func oneLeads_anotherFinishesAKilledLeadersRollout_aStalledLeaderNeverActsAgain_andARestartedDatabaseLosesNothing() throws {
        let server = try PostgresServer.shared.get()
        let url = server.url(try server.createDatabase())
        let env = ["BERTH_STATE_PASSWORD_FILE": server.passwordFile]
        func berth(_ arguments: [String]) throws -> BerthProcess.Result { try BerthProcess.run(arguments, state: url, environment: env) }
        try LocalCluster.removeBerthContainers()
        defer { try? LocalCluster.removeBerthContainers() }

        let stored = try berth(["apply", "-f", LocalCluster.nodes, "-f", fleet("v1")])
        #expect(stored.code == 0, "\(stored.stderr)")
        let controllers = try (1...3).map { i in
            let folder = dir + "/host-\(i)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            return try ControllerProcess(state: url, folder: dir, name: "controller-\(i)", arguments: ["--state-password-file", server.passwordFile], cwd: folder)
        }
        defer { for c in controllers { c.stop() } }
        let apis = controllers.map { $0.api() ?? "" }
        func leaders() -> [Int] { apis.indices.filter { BerthProcess.httpStatus(apis[$0] + "/readyz") == 200 } }

        // One leads; the others stand by, saying who leads.
        #expect(waitUntil(20) { leaders().count == 1 } != nil, "\(controllers.map { $0.text.suffix(800) })")
        let first = try #require(leaders().first)
        for i in apis.indices where i != first {
            #expect(try BerthProcess.get(apis[i] + "/readyz").contains("standing by: the lease is held by"))
        }
        let converged = try berth(["apply", "-f", LocalCluster.nodes, "-f", fleet("v1"), "--wait", "--timeout", "60"])
        #expect(converged.code == 0, "\(converged.stdout)\(converged.stderr)")

        // The leader dies mid-rollout (kill -9): another takes the lease once it expires (TTL 3 s)
        // and finishes the rollout.
        #expect(try berth(["apply", "-f", LocalCluster.nodes, "-f", fleet("v2")]).code == 0)
        let rolling = try waitUntil(20) { try LocalCluster.running().filter { $0.contains("chat-") && !$0.contains("canary") }.count == 3 }
        #expect(rolling != nil, "a surge replica of the rollout started")
        controllers[first].crash()
        let takeover = waitUntil(15) { leaders().count == 1 }
        #expect(takeover.map { $0 <= 3 + 2 } == true, "took over after \(takeover.map { "\($0)" } ?? "never") s")
        let second = try #require(leaders().first)
        let finished = try berth(["apply", "-f", LocalCluster.nodes, "-f", fleet("v2"), "--wait", "--timeout", "90"])
        #expect(finished.code == 0 && finished.stdout.contains("converged"), "\(finished.stdout)\(finished.stderr)\n\(controllers[second].text.suffix(2000))")
        #expect(try Self.doubledSlots().isEmpty)

        // The new leader stalls past its lease (SIGSTOP), the third takes over; when the stalled one
        // resumes it finds the lease gone by the database's clock and acts no more.
        kill(controllers[second].pid, SIGSTOP)
        let third = try #require(waitUntil(15) { leaders().count == 1 }.flatMap { _ in leaders().first })
        #expect(third != second && third != first)
        #expect(try berth(["apply", "-f", LocalCluster.nodes, "-f", fleet("v1")]).code == 0)
        Thread.sleep(forTimeInterval: 1)
        kill(controllers[second].pid, SIGCONT)
        #expect(waitUntil(10) { controllers[second].text.contains("lost the lease") || controllers[second].text.contains("no longer leads") } != nil,
                "\(controllers[second].text.suffix(1500))")
        let back = try berth(["apply", "-f", LocalCluster.nodes, "-f", fleet("v1"), "--wait", "--timeout", "90"])
        #expect(back.code == 0, "\(back.stdout)\(back.stderr)")
        #expect(BerthProcess.httpStatus(apis[second] + "/readyz") == 503)
        #expect(try Self.doubledSlots().isEmpty)

        // PostgreSQL restarts (a crash: immediate stop) under the running controllers: they
        // reconnect, one leads again, and no revision is lost.
        let before = try berth(["history", "--limit", "100"]).stdout
        try server.restart()
        #expect(waitUntil(20) { leaders().count == 1 } != nil)
        let more = try berth(["apply", "-f", LocalCluster.nodes, "-f", fleet("v1", canaries: 2), "--wait", "--timeout", "90"])
        #expect(more.code == 0, "\(more.stdout)\(more.stderr)")
        let after = try berth(["history", "--limit", "100"]).stdout
        #expect(after.split(separator: "\n").count == before.split(separator: "\n").count + 1, "\(before)\n\(after)")
        for line in before.split(separator: "\n").dropFirst() { #expect(after.contains(line)) }
    }

    /// The leader reaches PostgreSQL through a proxy the test cuts (connections closed, new ones
    /// refused), while the engines stay in reach. A replica is killed at the moment of the cut:
    /// the cut-off leader would replace it, but its renewal fails, so it acts on nothing; the
    /// standby takes over once the lease runs out by the database's clock and replaces it.
    @Test func aLeaderCutOffFromPostgres_actsOnNothing_andTheStandbyTakesOver() throws {
        let server = try PostgresServer.shared.get()
        let database = try server.createDatabase()
        let direct = server.url(database)
        let port = unusedLoopbackPort()
        let proxied = "postgres://\(server.user)@127.0.0.1:\(port)/\(database)?sslmode=disable"
        let proxy = try Spawn.start(["/usr/bin/python3", BerthProcess.root.path + "/scripts/lib/cut-proxy", "\(port)", "127.0.0.1", "\(server.port)"],
                                    stdout: dir + "/proxy.log")
        defer { kill(proxy, SIGTERM); Spawn.wait(proxy) }
        #expect(waitUntil(10) { ((try? String(contentsOfFile: dir + "/proxy.log", encoding: .utf8)) ?? "").contains("ready") } != nil)
        let env = ["BERTH_STATE_PASSWORD_FILE": server.passwordFile]
        try LocalCluster.removeBerthContainers()
        defer { try? LocalCluster.removeBerthContainers() }
        #expect(try BerthProcess.run(["apply", "-f", LocalCluster.nodes, "-f", fleet("v1")], state: direct, environment: env).code == 0)

        func start(_ name: String, _ state: String) throws -> ControllerProcess {
            try FileManager.default.createDirectory(atPath: dir + "/" + name, withIntermediateDirectories: true)
            return try ControllerProcess(state: state, folder: dir, name: name, arguments: ["--state-password-file", server.passwordFile], cwd: dir + "/" + name)
        }
        let cutOff = try start("cut-off", proxied)
        defer { cutOff.stop() }
        let cutOffAPI = try #require(cutOff.api())
        #expect(waitUntil(20) { BerthProcess.httpStatus(cutOffAPI + "/readyz") == 200 } != nil, "\(cutOff.text.suffix(1500))")
        let standby = try start("standby", direct)
        defer { standby.stop() }
        let standbyAPI = try #require(standby.api())
        #expect(waitUntil(20) { BerthProcess.httpStatus(standbyAPI + "/readyz") == 503 } != nil)
        let converged = try BerthProcess.run(["apply", "-f", LocalCluster.nodes, "-f", fleet("v1"), "--wait", "--timeout", "60"], state: direct, environment: env)
        #expect(converged.code == 0, "\(converged.stdout)\(converged.stderr)")

        // What runs before the cut, and the epoch the cut-off leader stamps on what it creates.
        let before = Set(try Self.containers().map(\.id))
        let cutOffEpoch = try #require(cutOff.text.range(of: "leading with epoch ").map { String(cutOff.text[$0.upperBound...].prefix { $0.isNumber }) })
        kill(proxy, SIGUSR1)
        let victim = try #require(try LocalCluster.docker(1, ["ps", "-q", "--filter", "label=io.berth.deployment=chat"]).split(separator: "\n").first.map(String.init))
        _ = try LocalCluster.docker(1, ["rm", "-f", victim])
        let takeover = waitUntil(15) { BerthProcess.httpStatus(standbyAPI + "/readyz") == 200 }
        #expect(takeover != nil, "\(standby.text.suffix(1500))")
        #expect(try waitUntil(30) { try ControllerEndToEndTests.readyChat().count == 2 } != nil, "\(standby.text.suffix(1500))")
        // Everything created since the cut carries the new leader's epoch: the cut-off one created nothing.
        let created = try Self.containers().filter { !before.contains($0.id) }
        #expect(!created.isEmpty && created.allSatisfy { $0.epoch != cutOffEpoch }, "created since the cut: \(created); the cut-off leader's epoch \(cutOffEpoch)")
        #expect(try Self.doubledSlots().isEmpty)

        // Healed: it connects again, finds the lease taken, and stands by.
        kill(proxy, SIGUSR2)
        #expect(waitUntil(20) { BerthProcess.httpStatus(cutOffAPI + "/readyz") == 503 } != nil, "\(cutOff.text.suffix(1500))")
    }
}
}
