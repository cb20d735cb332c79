import BerthModel
import BerthStore
import BerthTesting
import Foundation

// SQLite against PostgreSQL, in the same run on the same machine: a PostgreSQL 15 of its own
// (the tests' harness with fsync on: initdb into a temporary folder, a loopback port, a scram
// password read from a file), then for
// each backend: the first apply of the 1,000-node fleet and a no-op re-apply (the binary, timed by
// hyperfine), `history --at` over 100,000 revisions (the history benchmark's state, copied into
// PostgreSQL with `StateCopy`), the store's share of an idle reconcile pass (in process), and a
// leader takeover after kill -9 (two `berth controller` processes, lease TTL 3 s). Goal: each
// PostgreSQL figure within 2× of SQLite's; takeover within TTL + 1 s.

func backendsBenchmark(_ options: BenchOptions) throws {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/hyperfine") else { fail("hyperfine is missing: apt-get install hyperfine") }
    let work = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bench-backends-\(getpid())").path
    try FileManager.default.createDirectory(atPath: work + "/fleet", withIntermediateDirectories: true)
    guard PostgresServer.installed else { fail("PostgreSQL 15 is not installed: scripts/install-deps --cluster") }
    let server = try PostgresServer(fsync: true)
    try server.sql("CREATE DATABASE fleet")
    try server.sql("CREATE DATABASE takeover")
    defer {
        server.stop()
        if options.keep { print("kept \(work)") } else { try? FileManager.default.removeItem(atPath: work) }
    }
    // Absolute: the controllers run in folders of their own.
    let berth = URL(fileURLWithPath: options.berth).standardizedFileURL.path
    let runs = "\(options.runs)"
    setenv("BERTH_STATE_PASSWORD_FILE", server.passwordFile, 1)
    print("berth-bench backends — \(berth), SQLite file vs PostgreSQL 15 on loopback (fsync on), \(ProcessInfo.processInfo.activeProcessorCount) cores")
    try generateFleet(into: work + "/fleet")
    let fleet = work + "/fleet"
    var rows: [(String, Double, Double, Double)] = []  // name, SQLite, PostgreSQL, goal ratio

    // Apply and re-apply, through the binary.
    let file = work + "/fleet.db"
    let url = server.url("fleet")
    let firstFile = try hyperfine(["-r", runs, "--prepare", "rm -f \(file) \(file)-wal \(file)-shm", "\(berth) apply -f \(fleet) --state \(file)"])
    let firstPG = try hyperfine(["-r", runs, "--prepare", try server.recreate("fleet"), "\(berth) apply -f \(fleet) --state '\(url)'"])
    rows.append(("first apply (1,000 nodes, 3,200 objects)", median(firstFile), median(firstPG), 2))
    let noopFile = try hyperfine(["-w", "1", "-r", runs, "\(berth) apply -f \(fleet) --state \(file)"])
    let noopPG = try hyperfine(["-w", "1", "-r", runs, "\(berth) apply -f \(fleet) --state '\(url)'"])
    rows.append(("no-op re-apply", median(noopFile), median(noopPG), 2))

    // History at depth: the history benchmark's state (built here when missing), copied into PostgreSQL.
    let historyState = "/tmp/berth-bench-history/state/berth.db"
    try buildHistoryState(historyState, revisions: options.revisions)
    let source = try StateStore.open(path: historyState, create: false)
    let revisions = try source.latestRevision() ?? 0
    try server.sql("CREATE DATABASE history")
    let copyStarted = Date()
    let copied = try StateCopy.copy(from: source, to: try StateStore.open(path: server.url("history"), create: true))
    print(String(format: "copied %d revisions into PostgreSQL in %.1f s (%@)", revisions, Date().timeIntervalSince(copyStarted), copied.description))
    let middle = "2023-11-\(14 + Int(revisions) / 2 / 1440 % 14)T12:00:00Z"
    let atFile = try hyperfine(["-w", "2", "-r", "10", "\(berth) history --at \(middle) --state \(historyState)"])
    let atPG = try hyperfine(["-w", "2", "-r", "10", "\(berth) history --at \(middle) --state \(server.url("history"))"])
    rows.append(("history --at (\(revisions) revisions)", median(atFile), median(atPG), 2))

    // A pass's store time, in process: what an idle pass reads, a lease renewal, and a status
    // write of 1,000 nodes and 2,000 deployments in which 20 rows changed.
    func passTimes(_ store: StateStore) throws -> [Double] {
        var watch = LeaseWatch()
        let lease = try store.acquireLease(holder: "bench", ttl: 60, watch: &watch)
        let nodes = try store.objects(kind: .node).map(\.resource.name)
        let deployments = try store.objects(kind: .deployment).map(\.resource.name)
        func status(_ pass: Int) -> FleetStatus {
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let changed = Date(timeIntervalSince1970: 1_800_000_000 + Double(pass))
            return FleetStatus(
                controller: ControllerStatus(holder: "bench", epoch: lease.epoch, startedAt: now, lastPassAt: changed, lastPassMilliseconds: 5,
                                             passes: pass, revision: 1, listen: nil),
                deployments: deployments.enumerated().map { i, name in
                    DeploymentStatus(name: name, objectRevision: 1, observedRevision: 1, modelVersion: "v1", desired: 2, ready: 2, updated: 2, updatedReady: 2,
                                     rollout: .complete, conditions: [], replicas: [], lastGoodRevision: 1)
                },
                nodes: nodes.enumerated().map { i, name in
                    NodeStatus(name: name, role: "active", ready: true, reason: "", message: "", lastHeartbeat: i < 20 ? changed : now,
                               gpusTotal: 8, gpusAllocated: 8, containers: 8)
                })
        }
        try store.writeStatus(status(0), holder: "bench")
        var times: [Double] = []
        for pass in 1...max(options.runs, 10) {
            let t0 = Date()
            _ = try store.latestRevision()
            _ = try store.objects()
            _ = try store.nodeHolds()
            _ = try store.gpuHolds()
            _ = try store.stagings()
            try store.renewLease(holder: "bench", epoch: lease.epoch, ttl: 60)
            try store.writeStatus(status(pass), holder: "bench")
            times.append(Date().timeIntervalSince(t0))
        }
        return times
    }
    let passFile = try passTimes(try StateStore.open(path: file, create: false))
    let passPG = try passTimes(try StateStore.open(path: url, create: false))
    rows.append(("a pass's store time (reads, renewal, status)", median(passFile), median(passPG), 2))

    // Takeover after kill -9, lease TTL 3 s: from the kill until the standby's /readyz says 200.
    func takeovers(_ state: String, _ prepare: () throws -> Void) throws -> [Double] {
        var times: [Double] = []
        for run in 0..<max(3, options.runs / 2) {
            try prepare()
            try runCommand(berth, ["apply", "-f", work + "/fleet/models.yaml", "--state", state])
            let a = try BenchController(berth: berth, state: state, port: 7590 + run * 2, log: work + "/a-\(run).log")
            guard a.waitReady(20) else { throw CommandFailed(description: "the first controller did not lead: \(a.logTail)") }
            let b = try BenchController(berth: berth, state: state, port: 7591 + run * 2, log: work + "/b-\(run).log")
            guard b.waitStatus(503, 20) else { throw CommandFailed(description: "the second controller did not stand by: \(b.logTail)") }
            // Kill at a random point of the leader's renewal cycle.
            Thread.sleep(forTimeInterval: Double.random(in: 0.5...1.5))
            let t0 = Date()
            a.kill9()
            guard b.waitReady(20) else { throw CommandFailed(description: "the standby did not take over: \(b.logTail)") }
            times.append(Date().timeIntervalSince(t0))
            b.stop()
        }
        return times
    }
    let takeFile = try takeovers(work + "/takeover.db") {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: work + "/takeover.db" + suffix) }
    }
    let takePG = try takeovers(server.url("takeover")) { try runCommand("/bin/sh", [try server.recreate("takeover")].map { String($0.dropFirst("/bin/sh ".count)) }) }
    rows.append(("leader takeover after kill -9 (TTL 3 s)", median(takeFile), median(takePG), 2))
    print(String(format: "takeover samples, s: SQLite %@; PostgreSQL %@ (goal ≤ TTL + 1 s = 4 s)",
                 takeFile.map { String(format: "%.2f", $0) }.joined(separator: " "), takePG.map { String(format: "%.2f", $0) }.joined(separator: " ")))

    print("")
    print("figure".padding(48) + "SQLite".padding(12) + "PostgreSQL".padding(12) + "ratio   goal ≤ 2×")
    for (name, sqlite, pg, goal) in rows {
        let ratio = pg / sqlite
        print(name.padding(48) + String(format: "%8.1f ms  %8.1f ms  %5.2f×  %@", sqlite * 1000, pg * 1000, ratio, (ratio <= goal ? "meets" : "MISSES") as NSString))
    }
}

extension PostgresServer {
    /// A command that drops and recreates `database` (a fresh state for each run): a script in
    /// the server's folder, since hyperfine runs commands without a shell.
    func recreate(_ database: String) throws -> String {
        let psql = (geteuid() == 0 ? "/usr/sbin/runuser -u postgres -- " : "") + "/usr/bin/psql -h \(folder) -p \(port) -U \(user) -d postgres -q"
        let script = folder + "/recreate-\(database).sh"
        try "cd \(folder) && \(psql) -c 'DROP DATABASE IF EXISTS \(database)' -c 'CREATE DATABASE \(database)'\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        return "/bin/sh " + script
    }
}

/// One `berth controller` process of the takeover benchmark.
final class BenchController {
    let pid: pid_t
    let port: Int
    let log: String

    init(berth: String, state: String, port: Int, log: String) throws {
        self.port = port
        self.log = log
        let folder = (log as NSString).deletingLastPathComponent + "/controller-\(port)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        pid = try Spawn.start([berth, "controller", "--state", state, "--listen", "127.0.0.1:\(port)", "--lease-ttl", "3", "--snapshot-interval", "0"],
                              cwd: folder, stdout: log)
    }

    var logTail: String { String(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").suffix(1500)) }

    func status() -> Int {
        Int((try? runCommand("/usr/bin/curl", ["-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)/readyz"])) ?? "") ?? 0
    }

    func waitStatus(_ code: Int, _ seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if status() == code { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    func waitReady(_ seconds: Double) -> Bool { waitStatus(200, seconds) }

    private var ended = false

    func kill9() {
        kill(pid, SIGKILL)
        Spawn.wait(pid)
        ended = true
    }

    func stop() {
        guard !ended else { return }
        kill(pid, SIGTERM)
        Spawn.wait(pid)
        ended = true
    }

    /// A benchmark that gave up leaves no controller behind.
    deinit { if !ended { kill9() } }
}
