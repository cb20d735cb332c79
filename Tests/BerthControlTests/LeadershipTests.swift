@testable import BerthControl
import BerthStore
import Foundation
import Testing

/// The lease as the controller and `berth reconcile` hold it, on a real state file.
@Suite("Leadership")
struct LeadershipTests {
    func state() throws -> (path: String, store: StateStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-leadership-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/berth.db"
        return (path, try StateStore.open(path: path, create: true))
    }

    @Test func oneLeads_theOtherStandsBy_andOnlyTheLeaderPassesTheFence() async throws {
        let (path, store) = try state()
        let a = Leadership(statePath: path, identity: "a", ttl: 6)
        let b = Leadership(statePath: path, identity: "b", ttl: 6)
        try a.step(store)
        try b.step(store)
        #expect(a.current == .leading(epoch: 1))
        #expect(b.current == .standby(holder: "a"))
        #expect(await a.fence(store)() == nil)
        #expect(await b.fence(store)() == "this controller does not hold the lease")
    }

    @Test func aReleasedLease_isTakenAtOnce_withTheNextEpoch_andTheOldHolderIsFencedOff() async throws {
        let (path, store) = try state()
        let a = Leadership(statePath: path, identity: "a", ttl: 6)
        let b = Leadership(statePath: path, identity: "b", ttl: 6)
        try a.step(store)
        let staleFence = a.fence(store)
        a.release(store)
        #expect(a.current == .standby(holder: nil))
        try b.step(store)
        #expect(b.current == .leading(epoch: 2))
        #expect(await staleFence() != nil, "a fence made while leading refuses once the lease is gone")
        try a.step(store)
        #expect(a.current == .standby(holder: "b"), "renewing never takes a lease another holds")
    }

    @Test func aDeposedLeader_learnsItFromTheFence_andStandsBy() async throws {
        let (path, store) = try state()
        let a = Leadership(statePath: path, identity: "a", ttl: 6)
        try a.step(store)
        // Another controller takes the lease behind a's back (as after a stall past the TTL).
        try store.releaseLease(holder: "a")
        let b = Leadership(statePath: path, identity: "b", ttl: 6)
        try b.step(store)
        #expect(a.current == .leading(epoch: 1), "a has not looked yet")
        let refusal = await a.fence(store)()
        #expect(refusal != nil)
        #expect(a.current.epoch == nil, "the fence's refusal makes it a standby: \(a.current)")
        a.renew(store)
        #expect(b.current == .leading(epoch: 2))
    }
}
