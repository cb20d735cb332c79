import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// Many Docker engines in one process, for running the real controller against a fleet larger
/// than any test machine: see the README's "Engine simulator".
@main
struct EngineSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-engine-sim",
        abstract: "Serve N simulated Docker engines on loopback addresses, each with its containers in memory.",
        discussion: """
            Engine i listens on 127.1.X.Y:PORT (the i-th address from --first-address); a started
            replica answers /v2/health/ready (200 after --ready-after-ms), /metrics and inference on
            its host port at its engine's address. --nodes-file writes the Node manifests to apply.

            Faults, on the control address (plain HTTP):
              GET  /engines                               each engine: state, containers, running
              POST /engines/NAME/crash                    stops answering; its containers exit (137)
              POST /engines/NAME/restore                  answers again (containers stay exited)
              POST /engines/NAME/hang                     accepts calls and never answers them
              POST /engines/NAME/latency?ms=N             adds N ms to every answer
              POST /engines/NAME/containers/REF/die       the container's process dies (exit 137)
            """)

    @Option(help: "Engines to serve.") var nodes = 10
    @Option(help: "GPUs declared per node in --nodes-file.") var gpus = 8
    @Option(help: "Nodes (the last ones) declared as standbys in --nodes-file.") var standby = 0
    @Option(help: "Address of the first engine; the others follow it (skipping .0 and .255).") var firstAddress = "127.1.0.1"
    @Option(help: "Port every engine listens on, at its own address.") var port = 2375
    @Option(help: "First host port of each node's replica range in --nodes-file.") var replicaPorts = 20000
    @Option(help: "Where the control API listens (HOST:PORT).") var control = "127.0.0.1:2370"
    @Option(help: "Milliseconds added to every engine answer.") var latencyMs = 0
    @Option(help: "Milliseconds from a replica's start until it answers ready.") var readyAfterMs = 500
    @Option(help: "Milliseconds a pull takes.") var pullMs = 200
    @Option(help: "Write the Node manifests of the engines here.") var nodesFile: String?
    @Option(help: "Node names: PREFIX-0001 …") var prefix = "sim"

    func validate() throws {
        guard (1...20_000).contains(nodes) else { throw ValidationError("--nodes must be 1–20000, got \(nodes)") }
        guard (0...nodes).contains(standby) else { throw ValidationError("--standby must be 0–\(nodes), got \(standby)") }
        guard Self.address(firstAddress, plus: 0) != nil else { throw ValidationError("--first-address must be an IPv4 address in 127.0.0.0/8, got \(firstAddress)") }
        guard control.split(separator: ":").count == 2, Int(control.split(separator: ":")[1]) != nil else {
            throw ValidationError("--control must be HOST:PORT, got \(control)")
        }
    }

    func run() async throws {
        Self.raiseDescriptorLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let settings = EngineSettings(latency: .milliseconds(latencyMs), readyAfter: .milliseconds(readyAfterMs), pullTime: .milliseconds(pullMs))
        let ports = ReplicaPorts(group: group)
        var engines: [SimulatedEngine] = []
        for i in 0..<nodes {
            guard let address = Self.address(firstAddress, plus: i) else { throw ValidationError("ran out of 127.0.0.0/8 addresses at node \(i + 1)") }
            let engine = SimulatedEngine(name: String(format: "\(prefix)-%04d", i + 1), address: address, port: port, settings: settings, group: group, ports: ports)
            do {
                try await engine.listen()
            } catch {
                throw ValidationError("cannot listen on \(address):\(port) for \(engine.name): \(error)")
            }
            engines.append(engine)
        }
        if let nodesFile {
            try nodeManifests(engines).write(toFile: nodesFile, atomically: true, encoding: .utf8)
        }
        let all = engines
        let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
        let parts = control.split(separator: ":")
        _ = try await Listener.start(host: String(parts[0]), port: Int(parts[1])!, group: group) { request in
            await Self.controlAnswer(request, engines: all, byName: byName)
        }
        FileHandle.standardOutput.write(Data(("berth-engine-sim: \(nodes) engines on \(engines[0].address)…\(engines[engines.count - 1].address) port \(port); control on \(control)"
              + (nodesFile.map { "; nodes in \($0)" } ?? "") + "\n").utf8))
        // Serve until stopped (SIGTERM/SIGINT end the process).
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    static func controlAnswer(_ r: Request, engines: [SimulatedEngine], byName: [String: SimulatedEngine]) async -> Reply {
        let s = r.path.split(separator: "/").map(String.init)
        if r.method == .GET, s == ["engines"] {
            let rows = engines.map { "{\"name\":\(JSON.quote($0.name)),\"address\":\"\($0.address)\",\"state\":\"\($0.state.rawValue)\",\"containers\":\($0.containerCount),\"running\":\($0.runningCount)}" }
            return .json("[" + rows.joined(separator: ",") + "]")
        }
        guard r.method == .POST, s.count >= 3, s[0] == "engines" else { return .error(.notFound, "unknown control call \(r.method) \(r.path)") }
        guard let engine = byName[s[1]] else { return .error(.notFound, "no engine named \(s[1])") }
        switch s.count == 3 ? s[2] : (s.count == 5 && s[2] == "containers" ? s[4] : "") {
        case "crash": await engine.crash()
        case "restore":
            do { try await engine.restore() } catch { return .error(.internalServerError, "\(engine.name) cannot listen again: \(error)") }
        case "hang": engine.hang()
        case "latency":
            guard let ms = r.query["ms"].flatMap(Int.init), ms >= 0 else { return .error(.badRequest, "latency needs ?ms=N (N ≥ 0)") }
            engine.setLatency(.milliseconds(ms))
        case "die":
            guard await engine.kill(s[3]) else { return .error(.notFound, "no container \(s[3]) on \(engine.name)") }
        default: return .error(.notFound, "unknown control call \(r.path)")
        }
        return .json("{\"name\":\(JSON.quote(engine.name)),\"state\":\"\(engine.state.rawValue)\"}")
    }

    func nodeManifests(_ engines: [SimulatedEngine]) -> String {
        var out = "# Written by berth-engine-sim: \(engines.count) simulated engines.\n"
        let range = max(gpus * 4, 16)
        for (i, e) in engines.enumerated() {
            out += """
                ---
                apiVersion: berth/v1
                kind: Node
                metadata: { name: \(e.name), labels: { cluster: sim } }
                spec:
                  address: \(e.address)
                  engine: { endpoint: "tcp://\(e.address):\(port)" }
                  role: \(i >= engines.count - standby ? "standby" : "active")
                  network: host
                  gpus: { count: \(gpus), model: H100-SXM5-80GB, memoryGiB: 80 }
                  ports: { from: \(replicaPorts), to: \(replicaPorts + range - 1) }

                """
        }
        return out
    }

    /// `first` plus `n`, skipping addresses ending in .0 and .255; nil past 127.255.255.254.
    static func address(_ first: String, plus n: Int) -> String? {
        let o = first.split(separator: ".").compactMap { Int($0) }
        guard o.count == 4, o[0] == 127, o.allSatisfy({ (0...255).contains($0) }) else { return nil }
        var v = (o[1] << 16) | (o[2] << 8) | o[3]
        var left = n
        while true {
            if v & 0xFF != 0 && v & 0xFF != 255 {
                if left == 0 { break }
                left -= 1
            }
            v += 1
            if v > 0xFFFFFE { return nil }
        }
        return "127.\(v >> 16).\((v >> 8) & 0xFF).\(v & 0xFF)"
    }

    /// Thousands of engines and replicas are thousands of sockets.
    static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
}
