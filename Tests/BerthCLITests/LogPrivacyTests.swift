import BerthTesting
import Foundation
import Testing

@Suite("What the controller's log says about people")
struct LogPrivacyTests {
    @Test func authorsAppearAsPseudonyms_neverByName() throws {
        let (dir, state) = try threeRevisions()
        defer { stopGateways(stateFolder: dir + "/state") }
        let author = "alice.smith-\(UUID().uuidString.prefix(6))"
        write("apiVersion: berth/v1\nkind: Deployment\nmetadata: { name: extra }\nspec: { model: r1-distill-qwen-7b, version: v1, replicas: 0, weight: 3 }\n", to: dir + "/r4.yaml")
        #expect(try BerthProcess.run(["apply", "-f", dir + "/r4.yaml", "--author", author], state: state).code == 0)
        #expect(try BerthProcess.run(["node", "promote", "l40s-4", "--author", author], state: state).code == 0)
        let controller = try ControllerProcess(state: state, folder: dir)
        let promoted = waitUntil(15) { controller.text.contains("NodePromoted") }
        #expect(controller.stop() == 0)
        #expect(promoted != nil, "\(controller.text.suffix(1500))")
        let log = controller.text
        #expect(log.contains("working on revision 4 (apply by user:"), "\(log.suffix(1500))")
        #expect(log.contains("standby promoted to active by user:"), "\(log.suffix(1500))")
        #expect(!log.contains(author), "the author's name is in the log")
        // The state keeps the real name, for `berth history` and `describe`.
        #expect(try BerthProcess.run(["history"], state: state).stdout.contains(author))
    }
}
