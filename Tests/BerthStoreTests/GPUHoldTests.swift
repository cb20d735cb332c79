import BerthModel
import BerthStore
import Foundation
import Testing

@Suite("GPUs out of service in the store")
struct GPUHoldTests {
    func ecc(_ count: Int, gpu: Int = 1) -> GPUHold {
        GPUHold(node: "gpu-1", gpu: gpu, uuid: "GPU-1", fault: .uncorrectableECC, detail: "\(count) uncorrectable ECC error(s) since the driver loaded", author: "controller")
    }

    @Test(arguments: Backing.available)
    func aHoldStaysUntilReturned_andTheSameFigureDoesNotTakeItOutAgain(_ backing: Backing) throws {
        let store = try backing.store()
        #expect(try store.holdGPUs([ecc(2)]).count == 1)
        #expect(try store.holdGPUs([ecc(3)]).isEmpty, "already out: the first hold stays")
        #expect(try store.gpuHolds().map(\.detail) == ["2 uncorrectable ECC error(s) since the driver loaded"])

        try store.returnGPU(node: "gpu-1", gpu: 1, author: "ops", reason: "reset pending")
        #expect(try store.gpuHolds().isEmpty)
        // The counter lasts until the driver reloads: the same figure seen again changes nothing.
        #expect(try store.holdGPUs([ecc(2)]).isEmpty)
        #expect(try store.gpuHolds().isEmpty)
        // A new error does take it out again; so does an operator, whatever was seen before.
        #expect(try store.holdGPUs([ecc(5)]).count == 1)
        try store.returnGPU(node: "gpu-1", gpu: 1, author: "ops", reason: "")
        let byHand = GPUHold(node: "gpu-1", gpu: 1, fault: .operatorHold, detail: "taken out by ops", author: "ops")
        #expect(try store.holdGPUs([byHand]).count == 1)
        try store.returnGPU(node: "gpu-1", gpu: 1, author: "ops", reason: "")
        #expect(try store.holdGPUs([byHand]).count == 1, "an operator's hold always applies")
        #expect(throws: StoreError.self) { try store.returnGPU(node: "gpu-1", gpu: 0, author: "ops", reason: "") }

        let events = try store.events(kind: "node", name: "gpu-1", limit: 50).map(\.reason)
        #expect(events.filter { $0 == "GPUOutOfService" }.count == 4 && events.filter { $0 == "GPUReturnedToService" }.count == 3)
    }
}
