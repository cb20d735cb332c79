import BerthRuntime
import Foundation
import NIOCore
import NIOHTTP1

extension SimulatedEngine {
    // MARK: Images

    func imageCall(_ r: Request, _ s: [String]) async -> Reply {
        if s.count == 2, s[1] == "json", r.method == .GET {
            let rows = lock.withLock { images.map { ImageRow(Id: $0.value, RepoTags: [$0.key], Size: 1_073_741_824, Labels: [:], Created: 0) } }
            return .json(JSON.encode(rows))
        }
        if s.count == 2, s[1] == "create", r.method == .POST { return pull(r) }
        // References hold slashes (`registry:5000/team/model:tag`): everything between `images/` and the last segment.
        let last = s.last ?? ""
        let ref = Self.normalised(s.dropFirst().dropLast(last == "json" ? 1 : 0).joined(separator: "/"))
        switch r.method {
        case .GET where last == "json":
            guard let id = lock.withLock({ images[ref] }) else { return .error(.notFound, "No such image: \(ref)") }
            return .json("{\"Id\":\"\(id)\",\"RepoTags\":[\(JSON.quote(ref))],\"Size\":1073741824,\"Config\":{\"Labels\":{}}}")
        case .DELETE:
            return lock.withLock { () -> Reply in
                guard let id = images[ref] else { return .error(.notFound, "No such image: \(ref)") }
                if let user = containers.values.first(where: { Self.normalised($0.image) == ref }) {
                    return .error(.conflict, "conflict: unable to remove repository reference \"\(ref)\" (must force) - container \(user.id.prefix(12)) is using its referenced image \(id.dropFirst(7).prefix(12))")
                }
                images[ref] = nil
                return .json("[{\"Untagged\":\(JSON.quote(ref))},{\"Deleted\":\"\(id)\"}]")
            }
        default: return .error(.notFound, "page not found")
        }
    }

    /// `POST /images/create?fromImage=…&tag=…`: progress lines, then the image is there.
    func pull(_ r: Request) -> Reply {
        let from = r.query["fromImage"] ?? ""
        let ref = Self.normalised(r.query["tag"].map { $0.isEmpty ? from : "\(from):\($0)" } ?? from)
        let time = settings.pullTime
        let (stream, continuation) = AsyncStream<String>.makeStream()
        Task {
            continuation.yield("{\"status\":\"Pulling from \(from)\",\"id\":\"latest\"}\n")
            try? await Task.sleep(for: time)
            continuation.yield("{\"status\":\"Downloading\",\"progressDetail\":{\"current\":1073741824,\"total\":1073741824},\"id\":\"layer0\"}\n")
            lock.withLock { if images[ref] == nil { images[ref] = "sha256:" + Self.randomID() } }
            continuation.yield("{\"status\":\"Status: Downloaded newer image for \(ref)\"}\n")
            continuation.finish()
        }
        return .stream(.ok, contentType: "application/json", chunks: stream)
    }

    // MARK: Events

    func events(_ r: Request) -> Reply {
        let filter = Self.labelFilters(r.query["filters"])
        let key = UUID()
        let (stream, continuation) = AsyncStream<String>.makeStream()
        continuation.onTermination = { [weak self] _ in self?.lock.withLock { _ = self?.subscribers.removeValue(forKey: key) } }
        lock.withLock { subscribers[key] = (filter, continuation) }
        return .stream(.ok, contentType: "application/json", chunks: stream)
    }

    func publish(_ c: Container, action: String, extra: [String: String] = [:]) {
        lock.withLock { publishLocked(c, action: action, extra: extra) }
    }

    func publishLocked(_ c: Container, action: String, extra: [String: String] = [:]) {
        guard !subscribers.isEmpty else { return }
        var attributes = c.labels
        attributes["name"] = c.name
        attributes["image"] = c.image
        attributes.merge(extra) { $1 }
        let now = Date().timeIntervalSince1970
        let event = Event(status: action, id: c.id, from: c.image, Type: "container", Action: action,
                          Actor: .init(ID: c.id, Attributes: attributes), scope: "local", time: Int64(now), timeNano: Int64(now * 1e9))
        let line = JSON.encode(event) + "\n"
        for s in subscribers.values where Self.matches(c.labels, s.filter) { s.continuation.yield(line) }
    }
}
