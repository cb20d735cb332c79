import NIOCore

/// The replicas' host ports of every engine: one listener per port number on 0.0.0.0, which
/// answers for the replica running at the address the connection was made to. A thousand nodes
/// with eight replicas each are 32 sockets, not 8,000 — under the descriptor limit of a test
/// machine. A connection to an address with no replica on that port is closed unanswered.
actor ReplicaPorts {
    struct Replica: Sendable {
        var readyAt: ContinuousClock.Instant
        var deployment: String
        var version: String
    }

    private let group: any EventLoopGroup
    private var listeners: [Int: Task<Listener, any Error>] = [:]
    /// "address:port" → the replica serving there.
    private var replicas: [String: Replica] = [:]

    init(group: any EventLoopGroup) { self.group = group }

    /// Serves `replica` at `address:port`; throws when another replica has it or the port cannot be bound.
    func add(address: String, port: Int, _ replica: Replica) async throws {
        let key = "\(address):\(port)"
        guard replicas[key] == nil else { throw PortTaken(key: key) }
        replicas[key] = replica
        do {
            _ = try await listener(port)
        } catch {
            replicas[key] = nil
            throw error
        }
    }

    func remove(address: String, port: Int) { replicas["\(address):\(port)"] = nil }

    func replica(at key: String) -> Replica? { replicas[key] }

    private func listener(_ port: Int) async throws -> Listener {
        if let task = listeners[port] { return try await task.value }
        let group = self.group
        let task = Task {
            try await Listener.start(host: "0.0.0.0", port: port, group: group) { [weak self] request in
                guard let self, let local = request.local, let r = await self.replica(at: local) else { return .drop }
                return SimulatedEngine.replicaAnswer(request, ready: ContinuousClock.now >= r.readyAt, deployment: r.deployment, version: r.version)
            }
        }
        listeners[port] = task
        do {
            return try await task.value
        } catch {
            listeners[port] = nil
            throw error
        }
    }

    struct PortTaken: Error, CustomStringConvertible {
        var key: String
        var description: String { "\(key) is taken by another replica" }
    }
}
