import BerthModel
import BerthStore
import BerthTesting
import Foundation
import Testing

@Suite("State store")
struct StateStoreTests {
    func store(_ backing: Backing) throws -> StateStore { try backing.store() }

    @Test(arguments: Backing.available)
    func apply_createsOneRevisionPerChange_andNoneForIdenticalInput(_ backing: Backing) throws {
        let store = try store(backing)
        let input = try Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat"))
        let first = try store.apply(input, options: options("first"))
        #expect(first.revision == 1)
        #expect(first.changes.map(\.action) == [.created, .created, .created])

        let again = try store.apply(input, options: options())
        #expect(again.revision == nil)
        #expect(again.isNoOp)
        #expect(try store.latestRevision() == 1)

        let scaled = try store.apply(Manifests.load(Manifests.deployment("chat", replicas: 3)), options: options("scale"))
        #expect(scaled.revision == 2)
        #expect(scaled.changes == [ObjectChange(key: ObjectKey(.deployment, "chat"), action: .configured)])
        let chat = try #require(try store.object(ObjectKey(.deployment, "chat")))
        #expect(chat.resource.deployment?.replicas == 3)
        #expect(chat.revision == 2)
        #expect(chat.createdRevision == 1)
        // Objects not in the input are left alone without --prune.
        #expect(try store.objects().count == 3)
    }

    @Test(arguments: Backing.available)
    func prune_deletesObjectsMissingFromInput_andHistoryKeepsThem(_ backing: Backing) throws {
        let store = try store(backing)
        _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat"), Manifests.deployment("canary")), options: options())
        let pruned = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat")), options: options("drop canary", prune: true))
        #expect(pruned.revision == 2)
        #expect(pruned.changes.filter { $0.action == .deleted }.map(\.key) == [ObjectKey(.deployment, "canary")])
        #expect(try store.object(ObjectKey(.deployment, "canary")) == nil)
        // The deleted object is still in history and in the state of revision 1.
        let history = try store.history(of: ObjectKey(.deployment, "canary"))
        #expect(history.map(\.number) == [2, 1])
        #expect(history[0].changes.first { $0.key.name == "canary" }?.action == .deleted)
        #expect(try store.state(at: 1).map(\.name).contains("canary"))
        #expect(try !store.state(at: 2).map(\.name).contains("canary"))
    }

    @Test(arguments: Backing.available)
    func stateAtRevision_reconstructsEachRevisionExactly(_ backing: Backing) throws {
        let store = try store(backing)
        var expected: [[Resource]] = []
        var current: [String: String] = ["node": Manifests.node("a"), "model": Manifests.model]
        for step in 1...6 {
            current["dep"] = Manifests.deployment("chat", version: step % 2 == 0 ? "v2" : "v1", replicas: step)
            if step == 3 { current["extra"] = Manifests.deployment("extra") }
            let input = try ManifestLoader.load(text: current.keys.sorted().map { current[$0]! }.joined(separator: "\n---\n"), file: "t")
            _ = try store.apply(input, options: options("step \(step)", prune: true))
            if step == 4 { current["extra"] = nil }
            expected.append(input.map(\.resource).sorted { $0.key < $1.key })
        }
        for (i, state) in expected.enumerated() {
            #expect(try store.state(at: Int64(i + 1)) == state, "revision \(i + 1)")
        }
    }

    @Test(arguments: Backing.available)
    func invalidInput_storesNothing(_ backing: Backing) throws {
        let store = try store(backing)
        _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model), options: options())
        // A deployment naming a missing version alongside a valid change: the valid one is not stored either.
        let input = try Manifests.load(Manifests.node("a", gpus: 4), Manifests.deployment("bad", version: "v7"))
        #expect(throws: ManifestErrors.self) { try store.apply(input, options: options()) }
        #expect(try store.latestRevision() == 1)
        #expect(try store.object(ObjectKey(.node, "a"))?.resource.node?.gpus.count == 8)
        #expect(try store.object(ObjectKey(.deployment, "bad")) == nil)
    }

    @Test(arguments: Backing.available)
    func dryRun_reportsChangesButStoresNothing(_ backing: Backing) throws {
        let store = try backing.store()
        let result = try store.apply(Manifests.load(Manifests.node("a")), options: options(dryRun: true))
        #expect(result.changes.map(\.action) == [.created])
        #expect(result.revision == nil)
        #expect(try store.latestRevision() == nil)
        #expect(try store.objects().isEmpty)
    }

    @Test(arguments: Backing.available)
    func history_isNewestFirst_limited_andRecordsAuthorAndMessage(_ backing: Backing) throws {
        let store = try backing.store()
        _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model), options: options("base"))
        for r in 1...5 {
            _ = try store.apply(Manifests.load(Manifests.deployment("chat", replicas: r)), options: ApplyOptions(author: "user\(r)", message: "scale to \(r)"))
        }
        let recent = try store.history(limit: 3)
        #expect(recent.map(\.number) == [6, 5, 4])
        #expect(recent[0].revision.author == "user5")
        #expect(recent[0].revision.message == "scale to 5")
        #expect(recent[0].changes.map(\.action) == [.configured])
        #expect(try store.history(of: ObjectKey(.node, "a")).map(\.number) == [1])
        #expect(try store.events(limit: 1).first?.message.contains("revision 6 by user5") == true)
    }

    @Test(arguments: Backing.available)
    func namesWithSQLMetacharacters_areStoredAsPlainData(_ backing: Backing) throws {
        // The manifest reader refuses such names; the store must still never let data become SQL.
        let store = try backing.store()
        _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat")), options: options())
        let evil = "x'); DROP TABLE revision; --"
        let gateway = Resource(metadata: ObjectMeta(name: evil, labels: ["k": "'; DELETE FROM object; --"]),
                               spec: .gateway(GatewaySpec(listen: 8080, routes: [Route(deployment: "chat", weight: 1)])))
        let result = try store.apply([LoadedResource(resource: gateway)], options: ApplyOptions(author: "o'brien; --", message: "\"; DROP TABLE object"))
        #expect(result.revision == 2)
        #expect(try store.object(ObjectKey(.gateway, evil))?.resource == gateway)
        #expect(try store.objects().count == 4)
        #expect(try store.history().map(\.revision.author) == ["o'brien; --", "tester"])
        #expect(try store.integrityProblems().isEmpty)
    }
}
