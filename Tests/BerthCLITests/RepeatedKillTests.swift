import BerthTesting
import Foundation
import Testing

/// A replica that dies again and again, each time after it served: each death is a fresh start.
extension LocalClusterEndToEnd.ControllerEndToEndTests {
    @Test func aReplicaKilledRepeatedly_comesBackEachTime_withoutGrowingDelays() throws {
        try LocalCluster.removeBerthContainers()
        defer { cleanUp() }
        let controller = try startController(on: fleet())
        defer { controller.stop() }
        var took: [Double] = []
        for _ in 0..<5 {
            let line = try LocalCluster.docker(1, ["ps", "--filter", "label=io.berth.deployment=chat", "--format", "{{.ID}} {{.Label \"io.berth.host-port\"}}"])
                .split(separator: "\n").first.map { $0.split(separator: " ").map(String.init) } ?? []
            guard line.count == 2 else { Issue.record("no chat replica on node-1"); return }
            _ = try LocalCluster.docker(1, ["kill", line[0]])
            Thread.sleep(forTimeInterval: 0.1)
            let back = waitUntil(20) { BerthProcess.httpStatus("http://127.0.0.1:\(line[1])/v2/health/ready") == 200 }
            took.append(back ?? 20)
            Thread.sleep(forTimeInterval: 1.5)
        }
        // The per-container backoff (1, 2, 4, 8 s) must not carry over from starts that worked.
        #expect(took.allSatisfy { $0 < 3.5 }, "seconds until ready after each kill: \(took)\n\(controller.text.suffix(1500))")
    }
}
