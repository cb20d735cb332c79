import BerthModel
import BerthStore
import BerthTesting
import Foundation
import Testing

@Suite("Snapshots")
struct SnapshotTests {
    @Test func create_list_verify_restore_andACorruptSnapshotIsCaughtAndRefused() throws {
        let (dir, state) = try threeRevisions()
        let created = try BerthProcess.run(["snapshot", "create"], state: state)
        #expect(created.code == 0, "\(created.stderr)")
        #expect(created.stdout.contains("-r3 taken: revision 3"))
        let id = String(created.stdout.split(separator: " ")[1])
        #expect(FileManager.default.fileExists(atPath: dir + "/state/snapshots/\(id).db"))
        #expect(FileManager.default.fileExists(atPath: dir + "/state/snapshots/\(id).json"))
        #expect(try BerthProcess.run(["snapshot", "list"], state: state).stdout.contains(id))
        #expect(try BerthProcess.run(["snapshot", "verify", id], state: state).stdout == "ok      \(id)\n")

        // Move on, then restore: a new revision equal to the snapshot's state.
        _ = try BerthProcess.run(["rollback", "--all", "--to-revision", "1", "--skip-image-check"], state: state)
        let restored = try BerthProcess.run(["snapshot", "restore", id], state: state)
        #expect(restored.stdout.contains("revision 5 stored: restore of snapshot \(id)"), "\(restored.stdout)\(restored.stderr)")
        #expect(try BerthProcess.run(["history", "diff", "3", "5"], state: state).code == 0)
        #expect(try BerthProcess.run(["history", "--limit", "1"], state: state).stdout.contains("restore"))

        // One flipped byte: verify names it, restore refuses it, the state is untouched.
        let path = dir + "/state/snapshots/\(id).db"
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0x01
        try data.write(to: URL(fileURLWithPath: path))
        let verify = try BerthProcess.run(["snapshot", "verify"], state: state)
        #expect(verify.code == 6)
        #expect(verify.stdout.contains("FAILED  \(id): sha256 is "))
        let before = FileManager.default.contents(atPath: state)
        let refused = try BerthProcess.run(["snapshot", "restore", id], state: state)
        #expect(refused.code == 3)
        #expect(refused.stderr.contains("snapshot \(id) failed verification"))
        #expect(FileManager.default.contents(atPath: state) == before)
        #expect(try BerthProcess.run(["rollback", "--all", "--to-snapshot", id, "--skip-image-check"], state: state).code == 3)
    }

    @Test func replaceDatabase_recoversALostOrDamagedState_keepingTheBrokenFileAside() throws {
        let (dir, state) = try threeRevisions()
        let id = String(try BerthProcess.run(["snapshot", "create"], state: state).stdout.split(separator: " ")[1])
        try Data("this is not a database any more".utf8).write(to: URL(fileURLWithPath: state))
        #expect(try BerthProcess.run(["get", "all"], state: state).code == 3)
        let r = try BerthProcess.run(["snapshot", "restore", id, "--replace-database"], state: state)
        #expect(r.code == 0, "\(r.stderr)")
        #expect(r.stdout.contains("disaster recovery: the database file is replaced by snapshot \(id) (revision 3)"))
        #expect(r.stdout.contains("keeping the current file aside"))
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir + "/state").filter { $0.hasPrefix("berth.db.broken-") }
        #expect(aside.count == 1)
        #expect(FileManager.default.contents(atPath: dir + "/state/" + aside[0]) == Data("this is not a database any more".utf8))
        #expect(try BerthProcess.run(["history"], state: state).stdout.contains("extra"))
    }

    @Test func replaceDatabase_underARunningController_isRefusedNamingIt_andARestoreForgetsOldNodeVerdicts() throws {
        let (dir, state) = try threeRevisions()
        // The snapshot carries an old verdict: a node failed when it was taken.
        let store = try StateStore.open(path: state, create: false)
        var watch = LeaseWatch()
        _ = try store.acquireLease(holder: "old-controller", ttl: 6, watch: &watch)
        try store.writeStatus(FleetStatus(controller: nil, deployments: [], nodes: [
            NodeStatus(name: "gpu-a1", role: "active", ready: false, reason: "NodeFailed", message: "EngineUnreachable: gone", lastHeartbeat: nil, gpusTotal: 8, gpusAllocated: 0, containers: 0),
        ]), holder: "old-controller")
        try store.releaseLease(holder: "old-controller")
        let id = String(try BerthProcess.run(["snapshot", "create"], state: state).stdout.split(separator: " ")[1])
        let controller = try ControllerProcess(state: state, folder: dir)
        defer {
            controller.stop()
            stopGateways(stateFolder: dir + "/state")  // the fleet's gateway: the controller started its nginx
        }
        #expect(waitUntil(10) { controller.text.contains("leading with epoch") } != nil, "\(controller.text)")
        let refused = try BerthProcess.run(["snapshot", "restore", id, "--replace-database"], state: state)
        #expect(refused.code == 1 && refused.stderr.contains("a controller holds the lease") && refused.stderr.contains("stop it before"), "\(refused.stderr)")
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: dir + "/state")).contains { $0.hasPrefix("berth.db.broken-") }, "nothing moved")
        #expect(controller.stop() == 0)
        let restored = try BerthProcess.run(["snapshot", "restore", id, "--replace-database"], state: state)
        #expect(restored.code == 0, "\(restored.stderr)")
        #expect(try StateStore.open(path: state, create: false).fleetStatus().nodes.isEmpty, "the old NodeFailed mark is gone")
    }

    @Test func retention_keepsTheNewestPerHourAndPerDay() throws {
        let state = BerthProcess.temporaryFolder() + "/state/berth.db"
        _ = try StateStore.open(path: state, create: true)
        let snapshots = SnapshotStore(statePath: state)
        let store = try StateStore.open(path: state, create: false)
        // Every 20 minutes over 3 days: 216 snapshots.
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for i in 0..<216 {
            _ = try snapshots.create(from: store, now: start.addingTimeInterval(Double(i) * 1200))
        }
        let removed = try snapshots.prune(hourly: 24, daily: 7)
        let kept = try snapshots.list()
        #expect(kept.count + removed.count == 216)
        // 24 hourly ones (the newest 24 hours, one each) plus the newest of the 3 days (two fall outside the hourly window).
        #expect(kept.count == 26, "\(kept.map(\.id))")
        #expect(kept.first?.createdAt == start.addingTimeInterval(215 * 1200))
        for r in kept { #expect(FileManager.default.fileExists(atPath: snapshots.databasePath(r.id))) }
        for id in removed { #expect(!FileManager.default.fileExists(atPath: snapshots.databasePath(id))) }
    }

    @Test func theController_takesSnapshotsOnItsInterval_andPrunesThem() throws {
        let (dir, state) = try threeRevisions()
        let controller = try ControllerProcess(state: state, folder: dir, arguments: ["--snapshot-interval", "2", "--snapshot-keep-hourly", "1", "--snapshot-keep-daily", "1"])
        defer {
            controller.stop()
            stopGateways(stateFolder: dir + "/state")  // the fleet's gateway runs a managed nginx
        }
        var first = ""
        let taken = waitUntil(10) {
            first = (try? BerthProcess.run(["snapshot", "list"], state: state).stdout) ?? ""
            return first.contains("-r3")
        }
        #expect(taken != nil, "\(controller.text.suffix(1500))")
        let firstID = first.split(separator: "\n").dropFirst().first.map { String($0.split(separator: " ")[0]) } ?? ""
        // Two seconds on, a newer one; with one hourly and one daily kept, the older one is pruned.
        var later = ""
        #expect(waitUntil(10) {
            later = (try? BerthProcess.run(["snapshot", "list"], state: state).stdout) ?? ""
            return !later.contains(firstID)
        } != nil, "\(later)")
        #expect(later.split(separator: "\n").count == 2, "a header and one snapshot: \(later)")
        #expect(try BerthProcess.run(["snapshot", "verify"], state: state).code == 0)
        #expect(controller.stop() == 0)
        #expect(controller.text.contains("snapshot ") && controller.text.contains("pruned"), "\(controller.text.suffix(1500))")
    }

    @Test func theController_takesNoSnapshotWhileTheNewestIsRecent_howeverOldTheOthers() throws {
        let (dir, state) = try threeRevisions()
        defer { stopGateways(stateFolder: dir + "/state") }
        #expect(try BerthProcess.run(["snapshot", "create"], state: state).code == 0)
        // An older snapshot beside it, from three hours ago.
        let snapshots = SnapshotStore(statePath: state)
        let recent = try #require(try snapshots.list().first)
        var old = recent
        old.id = "20200101T000000Z-r3"
        old.createdAt = recent.createdAt.addingTimeInterval(-3 * 3600)
        try FileManager.default.copyItem(atPath: snapshots.databasePath(recent.id), toPath: snapshots.databasePath(old.id))
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        try encoder.encode(old).write(to: URL(fileURLWithPath: snapshots.databasePath(old.id).replacingOccurrences(of: ".db", with: ".json")))
        #expect(try snapshots.list().count == 2)
        // A second on, so that a snapshot the controller took would have an id of its own.
        Thread.sleep(forTimeInterval: 1.1)

        let controller = try ControllerProcess(state: state, folder: dir)
        waitUntil(10) { controller.text.contains("leading with epoch") }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(controller.stop() == 0)
        #expect(try snapshots.list().map(\.id).sorted() == [old.id, recent.id].sorted(), "the newest is seconds old: no snapshot due (\(controller.text.suffix(800)))")
    }

    @Test func snapshotTakenWhileAppliesRun_isConsistent() async throws {
        let state = BerthProcess.temporaryFolder() + "/state/berth.db"
        let store = try StateStore.open(path: state, create: true)
        _ = try store.apply(ManifestLoader.load(text: """
            apiVersion: berth/v1
            kind: Node
            metadata: { name: n }
            spec: { address: 10.0.0.1, engine: { endpoint: "unix:///run/d.sock" }, gpus: { count: 8, memoryGiB: 80 } }
            ---
            apiVersion: berth/v1
            kind: Model
            metadata: { name: m }
            spec: { versions: [{ version: v1, image: "r:5000/m:1", parameters: 7B, precision: bf16 }] }
            """, file: "base"), options: ApplyOptions(author: "t"))
        // A second process writes revisions as fast as it can while snapshots are taken here.
        let writer = Task.detached {
            let other = try StateStore.open(path: state, create: false)
            for i in 0..<300 {
                _ = try other.apply(ManifestLoader.load(text: """
                    apiVersion: berth/v1
                    kind: Deployment
                    metadata: { name: d\(i % 10) }
                    spec: { model: m, version: v1, replicas: \(i % 7) }
                    """, file: "d"), options: ApplyOptions(author: "w", message: "\(i)"))
            }
        }
        let snapshots = SnapshotStore(statePath: state)
        var taken: [SnapshotRecord] = []
        for i in 0..<40 {
            taken.append(try snapshots.create(from: store, now: Date(timeIntervalSince1970: 1_800_000_000 + Double(i) * 3600)))
            if (try store.latestRevision() ?? 0) >= 301 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        try await writer.value
        #expect(Set(taken.map(\.revision)).count > 1, "snapshots should land between applies")
        for r in taken {
            #expect(try snapshots.verify(r.id).isEmpty)
            let copy = try snapshots.open(r.id).store
            // The copy holds exactly the revisions up to its own, each reconstructing as in the live state.
            #expect(try copy.latestRevision() == r.revision)
            #expect(try copy.state(at: r.revision) == store.state(at: r.revision))
            #expect(try copy.integrityProblems().isEmpty)
        }
    }
}
