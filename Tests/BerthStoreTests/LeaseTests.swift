import BerthModel
import BerthStore
import Foundation
import Testing

@Suite("The controller lease")
struct LeaseTests {
    let t0 = Date(timeIntervalSince1970: 1_000_000)
    let m0 = ContinuousClock.now

    func store() throws -> StateStore { try StateStore.open(path: temporaryPath(), create: true) }

    @Test func aLeaseNotRenewedForItsTTL_onTheObserversMonotonicClock_isTakenOver() throws {
        let s = try store()
        var a = LeaseWatch(), b = LeaseWatch()
        let first = try s.acquireLease(holder: "a", ttl: 6, now: t0, watch: &a, at: m0)
        #expect(first.holder == "a" && first.epoch == 1)
        // b looks: held. Five seconds on, still held although a stopped renewing.
        #expect(try s.acquireLease(holder: "b", ttl: 6, now: t0, watch: &b, at: m0).holder == "a")
        #expect(try s.acquireLease(holder: "b", ttl: 6, now: t0, watch: &b, at: m0 + .seconds(5)).holder == "a")
        let taken = try s.acquireLease(holder: "b", ttl: 6, now: t0, watch: &b, at: m0 + .seconds(6))
        #expect(taken.holder == "b" && taken.epoch == 2)
    }

    @Test func aWallClockJump_neverDeposesARenewingLeader() throws {
        let s = try store()
        var a = LeaseWatch(), b = LeaseWatch()
        _ = try s.acquireLease(holder: "a", ttl: 6, now: t0, watch: &a, at: m0)
        for second in 0..<20 {
            // b's wall clock runs two hours ahead: the lease it reads has long "expired".
            let seen = try s.acquireLease(holder: "b", ttl: 6, now: t0.addingTimeInterval(7_200 + Double(second)), watch: &b, at: m0 + .seconds(second))
            #expect(seen.holder == "a", "taken at second \(second)")
            try s.renewLease(holder: "a", epoch: 1, ttl: 6, now: t0.addingTimeInterval(Double(second)))
        }
    }

    @Test func aReleasedLease_isTakenAtOnce_andItsHolderCanNoLongerRenewIt() throws {
        let s = try store()
        var a = LeaseWatch(), b = LeaseWatch()
        _ = try s.acquireLease(holder: "a", ttl: 6, now: t0, watch: &a, at: m0)
        try s.releaseLease(holder: "a", now: t0)
        #expect(try s.liveLeaseHolder(now: t0) == nil)
        #expect(try s.acquireLease(holder: "b", ttl: 6, now: t0, watch: &b, at: m0).holder == "b")
        #expect(throws: LeaseLost.self) { try s.renewLease(holder: "a", epoch: 1, ttl: 6, now: t0) }
        #expect(throws: LeaseLost.self) { try s.renewLease(holder: "b", epoch: 1, ttl: 6, now: t0) }
        try s.renewLease(holder: "b", epoch: 2, ttl: 6, now: t0)
        #expect(try s.liveLeaseHolder(now: t0)?.holder == "b")
    }

    @Test func events_olderThanTheRetention_arePruned() throws {
        let s = try store()
        let now = Date()
        try s.record(events: [
            Event(time: now.addingTimeInterval(-40 * 86_400), revision: nil, kind: nil, name: nil, reason: "Old", message: "old"),
            Event(time: now.addingTimeInterval(-1 * 86_400), revision: nil, kind: nil, name: nil, reason: "New", message: "new"),
        ])
        #expect(try s.pruneEvents(olderThanDays: 30, now: now) == 1)
        #expect(try s.pruneEvents(olderThanDays: 30, keep: 0, now: now) == 1, "beyond the newest N, whatever their age")
    }

    @Test func snapshotLeftovers_olderThanAnHour_areRemoved_recentOnesKept() throws {
        let path = temporaryPath()
        let s = try StateStore.open(path: path, create: true)
        let snapshots = SnapshotStore(statePath: path)
        let record = try snapshots.create(from: s)
        let folder = (path as NSString).deletingLastPathComponent + "/snapshots"
        let old = Date().addingTimeInterval(-7_200)
        for name in [".20260101T000000Z-abc123.db", "20260101T000000Z-r9.db", ".20261201T000000Z-fresh1.db"] {
            FileManager.default.createFile(atPath: folder + "/" + name, contents: Data("x".utf8))
            if !name.contains("fresh") { try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: folder + "/" + name) }
        }
        let removed = snapshots.pruneLeftovers()
        #expect(Set(removed) == [".20260101T000000Z-abc123.db", "20260101T000000Z-r9.db"])
        #expect(FileManager.default.fileExists(atPath: folder + "/.20261201T000000Z-fresh1.db"), "a snapshot in progress")
        #expect(FileManager.default.fileExists(atPath: snapshots.databasePath(record.id)), "a recorded snapshot stays")
    }
}
