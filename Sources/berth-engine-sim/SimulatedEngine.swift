import BerthRuntime
import Foundation
import NIOCore
import NIOHTTP1

/// Timings every engine of a run shares.
struct EngineSettings: Sendable {
    /// Added before every engine answer.
    var latency: Duration = .zero
    /// From a replica's start until its health endpoint answers 200.
    var readyAfter: Duration = .milliseconds(500)
    /// How long a pull takes.
    var pullTime: Duration = .milliseconds(200)
}

/// One simulated Docker engine: the part of the Engine API Berth uses, over HTTP on its own
/// loopback address, with containers in memory. A started replica answers health, metrics and
/// inference on its host port at the engine's address, as a real one does under host networking.
final class SimulatedEngine: @unchecked Sendable {
    enum State: String, Sendable { case up, down, hung }

    struct Container {
        var id: String
        var name: String
        var image: String
        var labels: [String: String]
        var env: [String]
        var cmd: [String]?
        var networkMode: String
        var state = "created"
        var exitCode = 0
        var created = Date()
        var startedAt: Date?
        var finishedAt: Date?
        var pid = 0
    }

    let name: String
    let address: String
    let port: Int
    let settings: EngineSettings
    let group: any EventLoopGroup
    let lock = NSLock()
    var containers: [String: Container] = [:]
    var images: [String: String] = [:]  // reference → id
    var listener: Listener?
    /// Running replicas: container id → host port.
    var replicas: [String: Int] = [:]
    let ports: ReplicaPorts
    var subscribers: [UUID: (filter: [String], continuation: AsyncStream<String>.Continuation)] = [:]
    var _state = State.up
    var extraLatency: Duration = .zero
    var nextPID = 1000

    init(name: String, address: String, port: Int, settings: EngineSettings, group: any EventLoopGroup, ports: ReplicaPorts) {
        self.ports = ports
        self.name = name
        self.address = address
        self.port = port
        self.settings = settings
        self.group = group
    }

    var state: State { lock.withLock { _state } }
    var containerCount: Int { lock.withLock { containers.count } }
    var runningCount: Int { lock.withLock { containers.values.filter { $0.state == "running" }.count } }

    // MARK: Faults

    func listen() async throws {
        let l = try await Listener.start(host: address, port: port, group: group) { [weak self] request in
            guard let self else { return .drop }
            return await self.answer(request)
        }
        lock.withLock { listener = l }
    }

    /// The machine went down: the engine stops answering, its event streams end, its containers
    /// exit (137) and their ports close.
    func crash() async {
        let (l, r, subs) = lock.withLock { () -> (Listener?, [Int], [AsyncStream<String>.Continuation]) in
            _state = .down
            for id in containers.keys where containers[id]!.state == "running" {
                containers[id]!.state = "exited"
                containers[id]!.exitCode = 137
                containers[id]!.finishedAt = Date()
            }
            let l = listener, r = Array(replicas.values), s = subscribers.values.map(\.continuation)
            listener = nil
            replicas = [:]
            subscribers = [:]
            return (l, r, s)
        }
        l?.close()
        for port in r { await ports.remove(address: address, port: port) }
        subs.forEach { $0.finish() }
    }

    /// Back up after a crash (containers stay exited, as after a reboot), or no longer hung.
    func restore() async throws {
        let wasDown = lock.withLock { () -> Bool in
            defer { _state = .up }
            return _state == .down
        }
        if wasDown { try await listen() }
    }

    /// The daemon stops answering; its replicas keep serving.
    func hang() { lock.withLock { _state = .hung } }

    func setLatency(_ d: Duration) { lock.withLock { extraLatency = d } }

    /// A container's process dies (the model server crashed): exit 137 and a `die` event.
    func kill(_ ref: String, exitCode: Int = 137) async -> Bool {
        guard let id = lock.withLock({ resolve(ref) }) else { return false }
        await exit(id, code: exitCode, action: "die")
        return true
    }

    // MARK: Engine API

    func answer(_ r: Request) async -> Reply {
        let (state, extra) = lock.withLock { (_state, extraLatency) }
        switch state {
        case .down: return .drop
        case .hung:
            while self.state == .hung { try? await Task.sleep(for: .milliseconds(100)) }
            return .drop
        case .up: break
        }
        let delay = settings.latency + extra
        if delay > .zero { try? await Task.sleep(for: delay) }
        let segments = r.path.split(separator: "/").map(String.init)
        switch (r.method, segments.first ?? "", segments.count) {
        case (.GET, "_ping", _), (.HEAD, "_ping", _): return .text("OK")
        case (.GET, "version", _):
            return .json(#"{"Version":"28.2.2","ApiVersion":"1.50","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64","Platform":{"Name":"berth-engine-sim"}}"#)
        case (.GET, "info", _):
            return .json("""
                {"Name":\(JSON.quote(name)),"ServerVersion":"28.2.2","Containers":\(containerCount),"ContainersRunning":\(runningCount),\
                "Runtimes":{"runc":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"}},"DefaultRuntime":"runc",\
                "MemTotal":1081679675392,"NCPU":96,"OperatingSystem":"berth-engine-sim"}
                """)
        case (.GET, "events", _): return events(r)
        case (_, "containers", _): return await containerCall(r, segments)
        case (_, "images", _): return await imageCall(r, segments)
        default: return .error(.notFound, "page not found")
        }
    }

    private func containerCall(_ r: Request, _ s: [String]) async -> Reply {
        if s.count == 2, s[1] == "json", r.method == .GET { return list(r) }
        if s.count == 2, s[1] == "create", r.method == .POST { return create(r) }
        guard s.count >= 2 else { return .error(.notFound, "page not found") }
        let ref = s[1]
        guard let id = lock.withLock({ resolve(ref) }) else { return .error(.notFound, "No such container: \(ref)") }
        switch (r.method, s.count == 3 ? s[2] : "") {
        case (.GET, "json"): return inspect(id)
        case (.POST, "start"): return await start(id)
        case (.POST, "stop"): return await stop(id, action: "stop")
        case (.POST, "kill"):
            let running = lock.withLock { containers[id]?.state == "running" }
            guard running else { return .error(.conflict, "cannot kill container: \(ref): container \(id) is not running") }
            await exit(id, code: 137, action: "kill")
            return .noContent
        case (.POST, "wait"):
            while lock.withLock({ containers[id]?.state == "running" }) { try? await Task.sleep(for: .milliseconds(50)) }
            return .json("{\"StatusCode\":\(lock.withLock { containers[id]?.exitCode ?? 0 })}")
        case (.GET, "logs"): return .full(.ok, contentType: "application/vnd.docker.raw-stream", body: "")
        case (.DELETE, ""):
            let running = lock.withLock { containers[id]?.state == "running" }
            if running {
                guard r.query["force"] == "1" || r.query["force"] == "true" else {
                    return .error(.conflict, "cannot remove container \"/\(lock.withLock { containers[id]?.name ?? id })\": container is running: stop the container before removing or force remove")
                }
                await exit(id, code: 137, action: "kill")
            }
            let c = lock.withLock { containers.removeValue(forKey: id) }
            if let c { publish(c, action: "destroy") }
            return .noContent
        default: return .error(.notFound, "page not found")
        }
    }

    /// `filters={"label":["k=v","k"]}`: every label filter must match.
    private func list(_ r: Request) -> Reply {
        let filters = Self.labelFilters(r.query["filters"])
        let all = r.query["all"] == "1" || r.query["all"] == "true"
        let now = Date()
        let rows: [ContainerRow] = lock.withLock {
            containers.values.filter { c in (all || c.state == "running") && Self.matches(c.labels, filters) }
                .sorted { $0.created > $1.created }
                .map { c in
                    ContainerRow(Id: c.id, Names: ["/" + c.name], Image: c.image, Labels: c.labels, State: c.state,
                                 Status: Self.status(c, now: now), Ports: [], Created: Int64(c.created.timeIntervalSince1970))
                }
        }
        return .json(JSON.encode(rows))
    }

    private func create(_ r: Request) -> Reply {
        guard let name = r.query["name"], !name.isEmpty else { return .error(.badRequest, "a container name is required") }
        guard let spec = try? JSONDecoder().decode(CreateBody.self, from: Data(r.body.readableBytesView)) else {
            return .error(.badRequest, "invalid JSON body")
        }
        return lock.withLock { () -> Reply in
            if let other = containers.values.first(where: { $0.name == name }) {
                return .error(.conflict, "Conflict. The container name \"/\(name)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
            }
            guard images[Self.normalised(spec.Image)] != nil else { return .error(.notFound, "No such image: \(spec.Image)") }
            let id = Self.randomID()
            let c = Container(id: id, name: name, image: spec.Image, labels: spec.Labels ?? [:], env: spec.Env ?? [], cmd: spec.Cmd,
                              networkMode: spec.HostConfig?.NetworkMode ?? "default")
            containers[id] = c
            publishLocked(c, action: "create")
            return .json(.created, "{\"Id\":\"\(id)\",\"Warnings\":[]}")
        }
    }

    private func inspect(_ id: String) -> Reply {
        guard let c = lock.withLock({ containers[id] }) else { return .error(.notFound, "No such container: \(id)") }
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let details = Details(Id: c.id, Name: "/" + c.name, Image: c.image, Created: iso.string(from: c.created),
                              State: .init(Status: c.state, Running: c.state == "running", Paused: false, OOMKilled: false, Dead: false,
                                           Pid: c.state == "running" ? c.pid : 0, ExitCode: c.exitCode,
                                           StartedAt: c.startedAt.map(iso.string) ?? "0001-01-01T00:00:00Z",
                                           FinishedAt: c.finishedAt.map(iso.string) ?? "0001-01-01T00:00:00Z"),
                              Config: .init(Image: c.image, Env: c.env, Cmd: c.cmd, Labels: c.labels),
                              HostConfig: .init(NetworkMode: c.networkMode))
        return .json(JSON.encode(details))
    }

    private func start(_ id: String) async -> Reply {
        guard let c = lock.withLock({ containers[id] }) else { return .error(.notFound, "No such container: \(id)") }
        if c.state == "running" { return .full(.notModified, contentType: "text/plain", body: "") }
        // A task container (no host port: hashing, copying files) does its work at once and exits 0.
        guard let port = c.labels[BerthLabel.hostPort].flatMap(Int.init) else {
            lock.withLock {
                containers[id]?.state = "exited"
                containers[id]?.exitCode = 0
                containers[id]?.startedAt = Date()
                containers[id]?.finishedAt = Date()
            }
            publish(c, action: "start")
            publish(c, action: "die", extra: ["exitCode": "0"])
            return .noContent
        }
        let replica = ReplicaPorts.Replica(readyAt: ContinuousClock.now + settings.readyAfter, deployment: c.labels[BerthLabel.deployment] ?? c.name,
                                           version: c.labels[BerthLabel.modelVersion] ?? "")
        do {
            try await ports.add(address: address, port: port, replica)
        } catch {
            return .error(.internalServerError, "driver failed programming external connectivity on endpoint \(c.name): Bind for \(address):\(port) failed: port is already allocated (\(error))")
        }
        let started = lock.withLock { () -> Bool in
            guard containers[id] != nil, _state == .up else { return false }
            containers[id]!.state = "running"
            containers[id]!.startedAt = Date()
            containers[id]!.exitCode = 0
            nextPID += 1
            containers[id]!.pid = nextPID
            replicas[id] = port
            return true
        }
        guard started else {
            await ports.remove(address: address, port: port)
            return .error(.notFound, "No such container: \(id)")
        }
        publish(c, action: "start")
        return .noContent
    }

    private func stop(_ id: String, action: String) async -> Reply {
        guard lock.withLock({ containers[id]?.state == "running" }) else { return .full(.notModified, contentType: "text/plain", body: "") }
        await exit(id, code: 0, action: action)
        return .noContent
    }

    /// The container's process ends: its port closes and the engine says so (`die`, then `stop`/`kill`).
    private func exit(_ id: String, code: Int, action: String) async {
        let (c, port) = lock.withLock { () -> (Container?, Int?) in
            guard containers[id]?.state == "running" else { return (nil, nil) }
            containers[id]!.state = "exited"
            containers[id]!.exitCode = code
            containers[id]!.finishedAt = Date()
            return (containers[id], replicas.removeValue(forKey: id))
        }
        if let port { await ports.remove(address: address, port: port) }
        guard let c else { return }
        if action == "kill" { publish(c, action: "kill", extra: ["signal": "9"]) }
        publish(c, action: "die", extra: ["exitCode": "\(code)"])
        if action == "stop" { publish(c, action: "stop") }
    }

    static func replicaAnswer(_ r: Request, ready: Bool, deployment: String, version: String) -> Reply {
        switch r.path {
        case "/v2/health/live": return .text(.ok, "")
        case "/v2/health/ready", "/health", "/healthz": return .text(ready ? .ok : .serviceUnavailable, "")
        case "/metrics":
            return .full(.ok, contentType: "text/plain; version=0.0.4",
                         body: "# TYPE nv_inference_request_success counter\nnv_inference_request_success{model=\"\(deployment)\"} 0\n")
        default:
            guard r.method == .POST else { return .error(.notFound, "not found") }
            guard ready else { return .json(.serviceUnavailable, #"{"error":"model is not ready"}"#) }
            return .json("{\"model_name\":\(JSON.quote(deployment)),\"model_version\":\(JSON.quote(version)),\"outputs\":[]}")
        }
    }

    // MARK: Helpers

    /// A container by full id, unique id prefix, or name.
    func resolve(_ ref: String) -> String? {
        if containers[ref] != nil { return ref }
        if let c = containers.values.first(where: { $0.name == ref || "/" + $0.name == ref }) { return c.id }
        let prefixed = containers.keys.filter { $0.hasPrefix(ref) }
        return prefixed.count == 1 ? prefixed[0] : nil
    }
}
