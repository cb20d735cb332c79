import BerthModel
import Foundation

extension StateStore {
    /// Every GPU out of service, by node and index.
    public func gpuHolds() throws -> [GPUHold] {
        try read("reading GPUs out of service") { db in
            try GPUHold.all(db, "WHERE returnedAt IS NULL").sorted { ($0.node, $0.gpu) < ($1.node, $1.gpu) }
        }
    }

    /// Takes GPUs out of service, each with a `GPUOutOfService` warning event on its node. A GPU
    /// already out keeps its first hold (and no new event); one an operator returned is not taken
    /// out again for the very fault it was returned with (the same figure, still reported), only
    /// for a new one, or by an operator. Returns the holds that are new.
    @discardableResult
    public func holdGPUs(_ holds: [GPUHold]) throws -> [GPUHold] {
        guard !holds.isEmpty else { return [] }
        return try write("taking GPUs out of service") { db in
            var added: [GPUHold] = []
            for hold in holds {
                if let existing = try GPUHold.one(db, "WHERE node = ? AND gpu = ?", [.text(hold.node), SQLValue(hold.gpu)]) {
                    if existing.isOut { continue }
                    if hold.fault != .operatorHold, existing.fault == hold.fault, existing.detail == hold.detail { continue }
                }
                try hold.upsert(db, key: ["node", "gpu"])
                var event = Event(time: hold.since, revision: nil, kind: "node", name: hold.node, type: "Warning",
                                  reason: Reason.gpuOutOfService.rawValue, message: "\(hold.summary) (by \(hold.author))")
                try event.insert(db)
                added.append(hold)
            }
            return added
        }
    }

    /// Returns a GPU to service: the hold goes, and a `GPUReturnedToService` event says who and why.
    /// Throws `StoreError.notFound` when the GPU is not out of service.
    @discardableResult
    public func returnGPU(node: String, gpu: Int, author: String, reason: String, now: Date = Date()) throws -> GPUHold {
        try write("returning GPU \(gpu) of node \(node) to service") { db in
            guard var hold = try GPUHold.one(db, "WHERE node = ? AND gpu = ?", [.text(node), SQLValue(gpu)]), hold.isOut else {
                throw StoreError(.notFound, path: path, detail: "GPU \(gpu) of node \(node) is not out of service", hint: "`berth describe node \(node)` lists its GPUs out of service")
            }
            hold.returnedBy = author
            hold.returnedAt = now
            try hold.upsert(db, key: ["node", "gpu"])
            let why = reason.isEmpty ? "" : ": \(reason)"
            var event = Event(time: now, revision: nil, kind: "node", name: node, reason: Reason.gpuReturnedToService.rawValue,
                              message: "GPU \(gpu) returned to service by \(author)\(why) (it was out since \(hold.since.formatted(.iso8601)), \(hold.fault.rawValue): \(hold.detail))")
            try event.insert(db)
            return hold
        }
    }
}
