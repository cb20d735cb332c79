import BerthControl
import BerthModel
import BerthStore
import BerthTesting
import Foundation
import Testing

@Suite("Rollback plans: what an earlier desired state is, and what storing it means")
struct RollbackPlanTests {
    /// Revision 1: node a, model m, chat on v1. Revision 2: chat on v2. Revision 3: canary added.
    func history() throws -> StateStore {
        let store = try StateStore.inMemory()
        let author = ApplyOptions(author: "tester")
        _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat")), options: author)
        _ = try store.apply(Manifests.load(Manifests.deployment("chat", version: "v2")), options: author)
        _ = try store.apply(Manifests.load(Manifests.deployment("canary")), options: author)
        return store
    }

    @Test func oneObject_returnsToBeforeItsLastChange_andStoresOnlyItself() throws {
        let store = try history()
        let plan = try RollbackPlan.resolve(.object(ObjectKey(.deployment, "chat"), revision: nil), store: store, current: store.objects().map(\.resource))
        #expect(plan.label == "deployment/chat at revision 1")
        #expect(plan.resources.first { $0.name == "chat" }?.deployment?.version == "v1")
        #expect(plan.resources.contains { $0.name == "canary" }, "the rest of the state stays as it is")
        #expect(plan.input.map(\.resource.name) == ["chat"])
        #expect(plan.focus == ["chat"])
        let options = plan.options(author: "ops", message: nil)
        #expect(!options.prune && options.origin == .rollback && options.message == "rollback to deployment/chat at revision 1")
    }

    @Test func anObjectThatDidNotExistYet_isDeleted() throws {
        let store = try history()
        let plan = try RollbackPlan.resolve(.object(ObjectKey(.deployment, "canary"), revision: nil), store: store, current: store.objects().map(\.resource))
        #expect(plan.deleting == [ObjectKey(.deployment, "canary")])
        #expect(!plan.resources.contains { $0.name == "canary" })
        #expect(plan.options(author: "ops", message: nil).deleting == [ObjectKey(.deployment, "canary")])
    }

    @Test func theWholeState_atARevisionOrATime_prunesTheRest() throws {
        let store = try history()
        let current = try store.objects().map(\.resource)
        let plan = try RollbackPlan.resolve(.revision(1), store: store, current: current)
        #expect(plan.resources.map(\.name).sorted() == ["a", "chat", "m"])
        #expect(plan.focus == nil && plan.options(author: "ops", message: "m").prune)
        let now = try RollbackPlan.resolve(.time(Date().addingTimeInterval(60)), store: store, current: current)
        #expect(now.label.hasPrefix("revision 3 (in force at "))
    }

    @Test func whatIsNotThereIsNamed() throws {
        let store = try history()
        let current = try store.objects().map(\.resource)
        #expect { try RollbackPlan.resolve(.revision(9), store: store, current: current) } throws: { "\($0)".contains("revision 9 does not exist") }
        #expect { try RollbackPlan.resolve(.time(Date(timeIntervalSince1970: 0)), store: store, current: current) } throws: {
            "\($0)" == "no revision was stored by 1970-01-01 00:00:00Z"
        }
        #expect { try RollbackPlan.resolve(.object(ObjectKey(.gateway, "edge"), revision: nil), store: store, current: current) } throws: {
            "\($0)".contains("gateway/edge has no history")
        }
    }

    @Test func checks_nameAReplicaThatDoesNotFit_forTheFocusOnly() async throws {
        let store = try StateStore.inMemory()
        let author = ApplyOptions(author: "tester")
        _ = try store.apply(Manifests.load(Manifests.node("a", gpus: 1), Manifests.model, Manifests.deployment("chat")), options: author)
        _ = try store.apply(Manifests.load(Manifests.deployment("chat", replicas: 3)), options: author)
        _ = try store.apply(Manifests.load(Manifests.deployment("chat", replicas: 1)), options: author)
        let current = try store.objects().map(\.resource)
        let back = try RollbackPlan.resolve(.object(ObjectKey(.deployment, "chat"), revision: 2), store: store, current: current)
        let problems = await back.problems(store: store, checkImages: false)
        #expect(problems.count == 2 && problems.allSatisfy { $0.hasPrefix("deployment/chat replica ") }, "\(problems)")
    }
}

@Suite("apply --wait: one look at the state")
struct ConvergenceWaitTests {
    @Test func withoutAController_itSaysSo() throws {
        let store = try StateStore.inMemory()
        _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat")), options: ApplyOptions(author: "t"))
        let look = try ConvergenceWait(store: store, revision: 1, timeout: 1).check(now: Date(), since: Date())
        #expect(!look.converged && look.failure == nil)
        #expect(look.line == "no controller is running on this state (start `berth controller`)")
    }

    @Test func aTimeout_throwsWithTheLastLine() throws {
        let store = try StateStore.inMemory()
        _ = try store.apply(Manifests.load(Manifests.node("a"), Manifests.model, Manifests.deployment("chat")), options: ApplyOptions(author: "t"))
        var lines: [String] = []
        #expect {
            _ = try ConvergenceWait(store: store, revision: 1, timeout: 0).run { line, _ in lines.append(line) }
        } throws: { "\($0)" == "timed out after 0 s waiting for revision 1: no controller is running on this state (start `berth controller`)" }
        #expect(lines.count == 1)
    }
}
