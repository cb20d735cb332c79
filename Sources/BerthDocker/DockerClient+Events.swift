import Foundation
import NIOCore
import NIOFoundationCompat

extension DockerClient {
    /// Container events of Berth's containers, as they happen, until the task is cancelled or the
    /// engine goes away (the stream then finishes with the transport error).
    public func events(labels: [String] = [DockerClient.managedLabel], since: Date? = nil) -> AsyncThrowingStream<DockerEvent, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let filters = try String(decoding: JSONEncoder().encode(["label": labels, "type": ["container"]]), as: UTF8.self)
                    var query = [("filters", filters)]
                    if let since { query.append(("since", "\(Int(since.timeIntervalSince1970))")) }
                    let response = try await open(.GET, "/events", query: query, timeout: .seconds(365 * 86_400), operation: "follow events")
                    var pending = Data()
                    for try await chunk in response.body {
                        pending.append(contentsOf: chunk.readableBytesView)
                        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = pending[pending.startIndex..<newline]
                            pending = Data(pending[(newline + 1)...])
                            if let event = try? JSONDecoder().decode(DockerEvent.self, from: line) { continuation.yield(event) }
                        }
                    }
                    continuation.finish()
                } catch let error as DockerError {
                    continuation.finish(throwing: error)
                } catch {
                    continuation.finish(throwing: self.transportError(error, operation: "follow events"))
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
