import Foundation
import NIOCore
import NIOFoundationCompat

extension DockerClient {
    /// Pulls `reference` (`registry:5000/repo:tag`), reading the progress stream to the end.
    /// Errors the registry reports inside the stream (no such tag, denied) are thrown as `.imageMissing`.
    /// `progress`, when given, hears the bytes done and known in all so far, summed over layers.
    public func pullImage(_ reference: String, auth: RegistryAuth? = nil, timeout: Duration = .seconds(1800),
                          progress: (@Sendable (_ done: Int64, _ total: Int64) -> Void)? = nil) async throws {
        let (name, tag) = Self.split(reference)
        var headers: [(String, String)] = []
        if let auth {
            let json = try JSONEncoder().encode(auth)
            headers.append(("X-Registry-Auth", json.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")))
        }
        let operation = "pull image \(reference)"
        let response = try await open(.POST, "/images/create", query: [("fromImage", name), ("tag", tag)], headers: headers,
                                      timeout: timeout, operation: operation, notFound: .imageMissing)
        struct Progress: Decodable {
            var id: String?
            var error: String?
            var errorDetail: Detail?
            var progressDetail: Bytes?
            struct Detail: Decodable { var message: String? }
            struct Bytes: Decodable { var current: Int64?; var total: Int64? }
        }
        var layers: [String: (done: Int64, total: Int64)] = [:]
        var pending = Data()
        do {
            for try await chunk in response.body {
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[(newline + 1)...])
                    if let p = try? JSONDecoder().decode(Progress.self, from: line), let message = p.errorDetail?.message ?? p.error {
                        let denied = message.lowercased().contains("unauthorized") || message.lowercased().contains("no basic auth credentials")
                        throw DockerError(denied ? .unauthorized : .imageMissing, endpoint: endpoint.description, operation: operation, message: message)
                    }
                    if let progress, let p = try? JSONDecoder().decode(Progress.self, from: line), let id = p.id, let total = p.progressDetail?.total, total > 0 {
                        layers[id] = (p.progressDetail?.current ?? 0, total)
                        progress(layers.values.reduce(0) { $0 + $1.done }, layers.values.reduce(0) { $0 + $1.total })
                    }
                }
            }
        } catch let error as DockerError {
            throw error
        } catch {
            throw transportError(error, operation: operation)
        }
    }

    /// Images on the node.
    public func listImages() async throws -> [ImageSummary] {
        let reply = try await send(.GET, "/images/json", operation: "list images")
        return try decode([ImageSummary].self, reply.body, operation: "list images")
    }

    /// Whether `reference` is on the node.
    public func hasImage(_ reference: String) async throws -> Bool {
        do {
            _ = try await send(.GET, "/images/\(reference)/json", operation: "inspect image \(reference)")
            return true
        } catch let error as DockerError where error.code == .notFound {
            return false
        }
    }

    /// Removes an image tag (and its layers when no other tag holds them). An image a container uses is refused by the engine.
    public func removeImage(_ reference: String, force: Bool = false) async throws {
        _ = try await send(.DELETE, "/images/\(reference)", query: [("force", force ? "1" : "0")], operation: "remove image \(reference)")
    }

    /// `repo:tag` → (`repo`, `tag`); the tag defaults to `latest`; a digest reference keeps its digest.
    static func split(_ reference: String) -> (String, String) {
        if let at = reference.firstIndex(of: "@") { return (String(reference[..<at]), String(reference[reference.index(after: at)...])) }
        if let colon = reference.lastIndex(of: ":"), !reference[colon...].contains("/") {
            return (String(reference[..<colon]), String(reference[reference.index(after: colon)...]))
        }
        return (reference, "latest")
    }
}
