import Foundation
import Testing

@Suite("berth CLI end to end")
struct CLITests {
    let v3 = BerthProcess.root.appendingPathComponent("manifests/deepseek-v3").path
    let r1 = BerthProcess.root.appendingPathComponent("manifests/deepseek-r1-distill-7b/fleet.yaml").path

    @Test func apply_printsOneLinePerObject_thenTheRevision_andReapplyChangesNothing() throws {
        let state = BerthProcess.temporaryFolder() + "/state/berth.db"
        let first = try BerthProcess.run(["apply", "-f", v3, "-m", "initial fleet"], state: state)
        #expect(first.code == 0, "\(first.stderr)")
        #expect(first.stdout.contains("node/gpu-a1 created\n"))
        #expect(first.stdout.contains("deployment/deepseek-v3 created\n"))
        #expect(first.stdout.hasSuffix("revision 1 stored (6 created, 0 configured, 0 deleted, 0 unchanged)\n"))

        let again = try BerthProcess.run(["apply", "-f", v3], state: state)
        #expect(again.code == 0)
        #expect(again.stdout.contains("model/deepseek-v3 unchanged"))
        #expect(again.stdout.hasSuffix("no changes; the desired state stays at revision 1\n"))

        let history = try BerthProcess.run(["history"], state: state)
        #expect(history.stdout.contains("6 created"))
        #expect(history.stdout.contains("initial fleet"))
        #expect(history.stdout.contains("tester"))
    }

    /// On a packaged host verbs run as `sudo -u berth berth …`: the author is the person behind sudo.
    @Test func authorIsThePersonBehindSudo() throws {
        let state = BerthProcess.temporaryFolder() + "/berth.db"
        let applied = try BerthProcess.run(["apply", "-f", r1], state: state, environment: ["USER": "berth", "SUDO_USER": "alice"])
        #expect(applied.code == 0, "\(applied.stderr)")
        let history = try BerthProcess.run(["history"], state: state)
        #expect(history.stdout.contains("alice") && !history.stdout.contains("berth "), "\(history.stdout)")
    }

    /// A GPU taken out of service by hand and returned: both recorded with author and reason,
    /// shown by describe; mistakes refused with what would be right.
    @Test func nodeGPU_outOfServiceAndBack_recordedWithAuthorAndReason() throws {
        let state = BerthProcess.temporaryFolder() + "/berth.db"
        #expect(try BerthProcess.run(["apply", "-f", r1], state: state).code == 0)
        let out = try BerthProcess.run(["node", "gpu", "l40s-1", "0", "--cordon", "-m", "fan noise", "--author", "alice"], state: state)
        #expect(out.code == 0 && out.stdout.contains("node/l40s-1 GPU 0 out of service"), "\(out.stdout)\(out.stderr)")
        let again = try BerthProcess.run(["node", "gpu", "l40s-1", "0", "--cordon"], state: state)
        #expect(again.code == 0 && again.stdout.contains("was already out of service"))
        let described = try BerthProcess.run(["describe", "node", "l40s-1"], state: state)
        #expect(described.stdout.contains("GPUs out of service"), "\(described.stdout)")
        #expect(described.stdout.contains("OperatorHold") && described.stdout.contains("taken out by alice: fan noise"), "\(described.stdout)")
        #expect(described.stdout.contains("GPUOutOfService"))

        let back = try BerthProcess.run(["node", "gpu", "l40s-1", "0", "--uncordon", "-m", "fan replaced", "--author", "bob"], state: state)
        #expect(back.code == 0 && back.stdout.contains("returned to service"), "\(back.stdout)\(back.stderr)")
        let after = try BerthProcess.run(["describe", "node", "l40s-1"], state: state)
        #expect(!after.stdout.contains("GPUs out of service") && after.stdout.contains("GPU 0 returned to service by bob: fan replaced"), "\(after.stdout)")

        let notOut = try BerthProcess.run(["node", "gpu", "l40s-1", "0", "--uncordon"], state: state)
        #expect(notOut.code == 4 && notOut.stderr.contains("GPU 0 of node l40s-1 is not out of service"), "\(notOut.stderr)")
        let noSuchGPU = try BerthProcess.run(["node", "gpu", "l40s-1", "3", "--cordon"], state: state)
        #expect(noSuchGPU.code == 4 && noSuchGPU.stderr.contains("node l40s-1 declares no GPU 3"), "\(noSuchGPU.stderr)")
        let noSuchNode = try BerthProcess.run(["node", "gpu", "l40s-9", "0", "--cordon"], state: state)
        #expect(noSuchNode.code == 4 && noSuchNode.stderr.contains("l40s-1"))
        let both = try BerthProcess.run(["node", "gpu", "l40s-1", "0"], state: state)
        #expect(both.code == 64 && both.stderr.contains("--uncordon"))
    }

    @Test func getYAML_isAcceptedByApply_asTheSameState() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        _ = try BerthProcess.run(["apply", "-f", r1], state: state)
        let yaml = try BerthProcess.run(["get", "all", "-o", "yaml"], state: state)
        #expect(yaml.code == 0)
        write(yaml.stdout, to: dir + "/exported.yaml")
        let reapply = try BerthProcess.run(["apply", "-f", dir + "/exported.yaml"], state: state)
        #expect(reapply.stdout.contains("no changes"), "\(reapply.stdout)\(reapply.stderr)")
        let json = try BerthProcess.run(["get", "deploy", "-o", "json"], state: state)
        let decoded = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(decoded?.count == 2)
    }

    @Test func get_acceptsEveryKindSpelling_andShowsTables() throws {
        let state = BerthProcess.temporaryFolder() + "/berth.db"
        _ = try BerthProcess.run(["apply", "-f", r1], state: state)
        for spelling in ["deployment", "deployments", "deploy", "Deployments"] {
            let out = try BerthProcess.run(["get", spelling], state: state)
            #expect(out.code == 0)
            #expect(out.stdout.hasPrefix("NAME  "), "\(spelling): \(out.stdout)")
            #expect(out.stdout.contains("r1-7b-canary  r1-distill-qwen-7b  v2"))
        }
        let gw = try BerthProcess.run(["get", "gw", "chat"], state: state)
        #expect(gw.stdout.contains("r1-7b=90%,r1-7b-canary=10%"))
        let nodes = try BerthProcess.run(["get", "no"], state: state)
        #expect(nodes.stdout.contains("l40s-4  standby"))
        let missing = try BerthProcess.run(["get", "deployment", "nope"], state: state)
        #expect(missing.code == 4)
        #expect(missing.stderr.contains("deployment \"nope\" not found"))
        let badKind = try BerthProcess.run(["get", "pods"], state: state)
        #expect(badKind.code == 64)
        #expect(badKind.stderr.contains("unknown kind \"pods\""))
    }

    @Test func diff_exitsZeroWhenEqual_oneWithAUnifiedDiff_twoOnError() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        _ = try BerthProcess.run(["apply", "-f", r1], state: state)
        #expect(try BerthProcess.run(["diff", "-f", r1], state: state).code == 0)
        let changed = try String(contentsOfFile: r1, encoding: .utf8).replacingOccurrences(of: "replicas: 2", with: "replicas: 3")
        write(changed, to: dir + "/changed.yaml")
        let diff = try BerthProcess.run(["diff", "-f", dir + "/changed.yaml"], state: state)
        #expect(diff.code == 1)
        #expect(diff.stdout.contains("--- deployment/r1-7b (stored, revision 1)\n+++ deployment/r1-7b (input)\n"))
        #expect(diff.stdout.contains("-  replicas: 2\n+  replicas: 3\n"))
        write("kind: [", to: dir + "/broken.yaml")
        #expect(try BerthProcess.run(["diff", "-f", dir + "/broken.yaml"], state: state).code == 2)
        // diff never writes.
        #expect(try BerthProcess.run(["history", "-o", "json"], state: state).stdout.components(separatedBy: "\"revision\"").count == 2)
    }

    @Test func historyShow_printsAWholeRevision_thatRollsBackWhenApplied() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        _ = try BerthProcess.run(["apply", "-f", r1], state: state)
        let text = try String(contentsOfFile: r1, encoding: .utf8)
        write(text.replacingOccurrences(of: "version: v1\n  replicas: 2", with: "version: v2\n  replicas: 4"), to: dir + "/v2.yaml")
        let second = try BerthProcess.run(["apply", "-f", dir + "/v2.yaml", "-m", "all on v2"], state: state)
        #expect(second.stdout.contains("deployment/r1-7b configured"))

        let perObject = try BerthProcess.run(["history", "deployment/r1-7b"], state: state)
        #expect(perObject.stdout.contains("deployment/r1-7b configured"))
        #expect(perObject.stdout.contains("all on v2"))
        let nodeHistory = try BerthProcess.run(["history", "node/l40s-1", "-o", "json"], state: state)
        #expect(nodeHistory.stdout.components(separatedBy: "\"revision\"").count == 2)

        let shown = try BerthProcess.run(["history", "show", "1"], state: state)
        #expect(shown.code == 0)
        #expect(shown.stdout.hasPrefix("# revision 1, "))
        write(shown.stdout, to: dir + "/rev1.yaml")
        let back = try BerthProcess.run(["apply", "-f", dir + "/rev1.yaml", "-m", "back to 1"], state: state)
        #expect(back.stdout.contains("deployment/r1-7b configured"))
        #expect(back.stdout.contains("revision 3 stored (0 created, 1 configured"))
        let current = try BerthProcess.run(["get", "deployment", "r1-7b", "-o", "yaml"], state: state)
        #expect(current.stdout.contains("replicas: 2"))
        #expect(try BerthProcess.run(["history", "show", "99"], state: state).code == 4)
    }

    @Test func dryRunAndPrune() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let dry = try BerthProcess.run(["apply", "-f", r1, "--dry-run"], state: state)
        #expect(dry.stdout.contains("node/l40s-1 created (dry run)"))
        #expect(dry.stdout.contains("dry run: nothing stored"))
        #expect(try BerthProcess.run(["history"], state: state).stderr.contains("no state at"))
        #expect(!FileManager.default.fileExists(atPath: state), "a dry run creates nothing")
        write("""
            apiVersion: berth/v1
            kind: Node
            metadata: { name: spare }
            spec: { address: 10.9.9.9, engine: { endpoint: "unix:///run/spare.sock" }, gpus: { count: 2, memoryGiB: 48 } }
            """, to: dir + "/spare.yaml")
        let both = try BerthProcess.run(["apply", "-f", r1, "-f", dir + "/spare.yaml"], state: state)
        #expect(both.stdout.contains("node/spare created"), "\(both.stderr)")
        let pruned = try BerthProcess.run(["apply", "-f", r1, "--prune"], state: state)
        #expect(pruned.code == 0, "\(pruned.stderr)")
        #expect(pruned.stdout.contains("node/spare deleted"))
        #expect(pruned.stdout.contains("revision 2 stored (0 created, 0 configured, 1 deleted"))
    }

    @Test func stateLocation_defaultsToStateFolder_andHonoursBERTH_STATE() throws {
        let cwd = BerthProcess.temporaryFolder()
        _ = try BerthProcess.run(["apply", "-f", r1], cwd: cwd)
        #expect(FileManager.default.fileExists(atPath: cwd + "/state/berth.db"))
        let other = cwd + "/elsewhere.db"
        _ = try BerthProcess.run(["apply", "-f", v3], environment: ["BERTH_STATE": other], cwd: cwd)
        #expect(FileManager.default.fileExists(atPath: other))
        let attributes = try FileManager.default.attributesOfItem(atPath: other)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func help_documentsExitCodesAndEveryVerb() throws {
        let help = try BerthProcess.run(["--help"])
        for word in ["apply", "diff", "get", "history", "Exit codes", "newer schema"] {
            #expect(help.stdout.contains(word), "\(word)")
        }
        let applyHelp = try BerthProcess.run(["apply", "--help"])
        #expect(applyHelp.stdout.contains("--prune"))
        #expect(applyHelp.stdout.contains("--dry-run"))
    }
}

@Suite("berth plan")
struct PlanCLITests {
    @Test func plan_placesTheV3GangAcrossBothActiveNodes_andExplainsWhatDoesNotFit() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        let v3 = BerthProcess.root.appendingPathComponent("manifests/deepseek-v3").path
        _ = try BerthProcess.run(["apply", "-f", v3], state: state)
        let plan = try BerthProcess.run(["plan"], state: state)
        #expect(plan.code == 0)
        #expect(plan.stdout.contains("deepseek-v3  0 (1/2)  gpu-a1  0,1,2,3,4,5,6,7  20000      placed"))
        #expect(plan.stdout.contains("deepseek-v3  0 (2/2)  gpu-a2  0,1,2,3,4,5,6,7  20000      placed"))
        // A second 16-GPU replica cannot fit: the standby is never used for new replicas.
        let text = try String(contentsOfFile: v3 + "/deployment.yaml", encoding: .utf8).replacingOccurrences(of: "replicas: 1", with: "replicas: 2")
        write(text, to: dir + "/two.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/two.yaml"], state: state)
        let two = try BerthProcess.run(["plan", "-o", "json"], state: state)
        #expect(two.stdout.contains("\"unschedulable\" : \"needs 16 GPUs ≥ 39.1 GiB of model A100-SXM4-80GB: gpu-a1 has 0 free (gang of 2 × 8); gpu-a2 has 0 free (gang of 2 × 8); gpu-s1 is a standby\""), "\(two.stdout)")
        #expect(two.stderr.contains("1 replica(s) cannot be placed"))
    }

    @Test func doctor_warnsWhenLosingOneActiveNodeWouldStrandAReplica() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        func node(_ name: String, role: String = "active") -> String {
            """
            apiVersion: berth/v1
            kind: Node
            metadata: { name: \(name) }
            spec:
              address: 10.0.0.\(name.last!)
              engine: { endpoint: "unix://\(dir)/\(name).sock" }
              role: \(role)
              gpus: { count: 8, model: H100, memoryGiB: 80 }
            """
        }
        let fleet = """
            apiVersion: berth/v1
            kind: Model
            metadata: { name: m }
            spec:
              versions: [{ version: v1, image: "registry.internal:5000/m:v1", parameters: 70B, precision: bf16 }]
            ---
            apiVersion: berth/v1
            kind: Deployment
            metadata: { name: chat }
            spec: { model: m, version: v1, replicas: 2, gpusPerReplica: 8 }
            """
        write([node("gpu-1"), node("gpu-2"), fleet].joined(separator: "\n---\n"), to: dir + "/fleet.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/fleet.yaml"], state: state)
        let doctor = try BerthProcess.run(["doctor"], state: state)
        #expect(doctor.stdout.contains("losing gpu-1 would leave 1 replica(s) unplaced") && doctor.stdout.contains("losing gpu-2 would leave"), "\(doctor.stdout)")
        // With a standby the same loss is absorbed.
        write(node("gpu-3", role: "standby"), to: dir + "/standby.yaml")
        _ = try BerthProcess.run(["apply", "-f", dir + "/standby.yaml"], state: state)
        let again = try BerthProcess.run(["doctor"], state: state)
        #expect(again.stdout.contains("losing any one of 2 active node(s), every replica placed now still fits"), "\(again.stdout)")
    }

    @Test func whatIf_theV3GangSurvivesLosingEitherActiveNode_butNotBoth() throws {
        let dir = BerthProcess.temporaryFolder()
        let state = dir + "/berth.db"
        _ = try BerthProcess.run(["apply", "-f", BerthProcess.root.appendingPathComponent("manifests/deepseek-v3").path], state: state)
        let one = try BerthProcess.run(["plan", "--fail", "gpu-a1"], state: state)
        #expect(one.code == 0, "\(one.stdout)\(one.stderr)")
        #expect(one.stdout.contains("If gpu-a1 is lost: standby gpu-s1 promoted; 1 replica(s) move; everything placed now still fits."), "\(one.stdout)")
        #expect(one.stdout.contains("gpu-a1+gpu-a2") && one.stdout.contains("gpu-s1 (GPUs 0,1,2,3,4,5,6,7"), "the gang re-forms on the standby: \(one.stdout)")
        let any = try BerthProcess.run(["plan", "--fail-any"], state: state)
        #expect(any.code == 0 && any.stdout.contains("N+1: the fleet absorbs the loss of any one active node"), "\(any.stdout)")
        let both = try BerthProcess.run(["plan", "--fail", "gpu-a1,gpu-a2", "-o", "json"], state: state)
        #expect(both.code == 5, "\(both.stdout)\(both.stderr)")
        #expect(both.stdout.contains("\"fits\" : false") && both.stdout.contains("gpu-a1 not ready; gpu-a2 not ready"), "\(both.stdout)")
        // A cordoned standby takes nothing: the same single loss no longer fits.
        _ = try BerthProcess.run(["node", "cordon", "gpu-s1", "-m", "firmware"], state: state)
        let cordoned = try BerthProcess.run(["plan", "--fail", "gpu-a1"], state: state)
        #expect(cordoned.code == 5 && cordoned.stdout.contains("gpu-s1 cordoned"), "\(cordoned.stdout)\(cordoned.stderr)")
        _ = try BerthProcess.run(["node", "uncordon", "gpu-s1"], state: state)
        let unknown = try BerthProcess.run(["plan", "--fail", "gpu-z9"], state: state)
        #expect(unknown.code == 4 && unknown.stderr.contains("no node gpu-z9") && unknown.stderr.contains("gpu-a1, gpu-a2, gpu-s1"), "\(unknown.stderr)")
    }
}
