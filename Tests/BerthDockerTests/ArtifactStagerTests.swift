import BerthDocker
import BerthModel
import BerthTesting
import Foundation
import Testing

@Suite("Artifact stager: what its output means")
struct ArtifactStagerParseTests {
    let files = [ArtifactStager.File(url: "http://f/m/a b.bin", path: "m/a b.bin", sha256: "aa", size: 10)]

    @Test func progressThenOutcome_pathsWithSpaces() {
        var r = ArtifactStager.parse("progress 4 10 4 m/a b.bin\n", files: files)
        #expect(r.done == 4 && r.total == 10 && r.fetched == 4 && r.current == "m/a b.bin" && r.outcome == nil)
        r = ArtifactStager.parse("progress 4 10 4 m/a b.bin\nmismatch m/a b.bin ff 10\n", files: files)
        #expect(r.outcome == .mismatch(path: "m/a b.bin", expected: "aa", actual: "ff", size: 10))
        #expect(r.outcome?.summary.contains("manifest aa, fetched file ff") == true)
        r = ArtifactStager.parse("staged 10 6\n", files: files)
        #expect(r.outcome == .staged && r.done == 10 && r.fetched == 6)
        r = ArtifactStager.parse("nospace 2147483648 1073741824 1073741824\n", files: files)
        #expect(r.outcome?.summary == "refused: needs 2.0 GiB more, 1.0 GiB free, and storage.minFreeGiB keeps 1.0 GiB free")
        r = ArtifactStager.parse("fetchfail m/a b.bin 22\n", files: files)
        #expect(r.outcome == .fetchFailed(path: "m/a b.bin", detail: "the source answered with an HTTP error (404, 403, …)"))
        #expect(ArtifactStager.parse("garbage\nprogress x\n", files: files).outcome == nil)
    }

    @Test func purgeOutput() {
        let ok = ArtifactStager.parsePurge("purged m/v1/a.bin 100\npurged m/v1/b.bin 20\ndone\n")
        #expect(ok.files == 2 && ok.bytes == 120 && ok.failure == nil)
        let failed = ArtifactStager.parsePurge("purged m/v1/a.bin 100\nfail m/v1/b.bin read-only file system\n")
        #expect(failed.files == 1 && failed.failure?.contains("m/v1/b.bin") == true)
        #expect(ArtifactStager.parsePurge("").failure != nil, "no `done`: not taken for a purge")
    }
}

/// The stager script itself, run on this machine against a real nginx: what runs in the
/// container on a node is exactly this script.
@Suite("Artifact stager against a real file server", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["BERTH_INTEGRATION"] == "1", "needs nginx; set BERTH_INTEGRATION=1"))
final class ArtifactStagerScriptTests {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("berth-stager-\(UUID().uuidString.prefix(8))").path
    let server: FileServer
    var a = "", b = ""
    let aSize = 24 << 20, bSize = (1 << 20) + 3

    init() throws {
        try FileManager.default.createDirectory(atPath: base + "/src", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/node", withIntermediateDirectories: true)
        server = try FileServer(root: base + "/src", port: 18_790, slowRate: 2 << 20)
        a = try server.generate("m/v1/model.safetensors", size: aSize, seed: 7)
        b = try server.generate("m/v1/config/tokenizer.json", size: bSize, seed: 8)
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(atPath: base)
    }

    func files(_ prefix: String = "", sha a: String? = nil) -> [ArtifactStager.File] {
        [ArtifactStager.File(url: server.url + prefix + "m/v1/model.safetensors", path: "m/v1/model.safetensors", sha256: a ?? self.a, size: Int64(aSize)),
         ArtifactStager.File(url: server.url + prefix + "m/v1/config/tokenizer.json", path: "m/v1/config/tokenizer.json", sha256: b, size: Int64(bSize))]
    }

    /// Starts the script in its own session (as in a container: stopping it stops curl too);
    /// its output goes to a file. The pid is also the process group to kill.
    func launch(_ files: [ArtifactStager.File], keep: Int64 = 0, rate: Int64 = 0, env: [String: String] = [:], shell: String = "/bin/sh") throws -> (pid_t, String) {
        let output = base + "/stager-\(UUID().uuidString.prefix(8)).out"
        let argv = ["/usr/bin/setsid", shell, "-c", ArtifactStager.script, "berth-stage"]
            + ArtifactStager.arguments(root: base + "/node", keepFreeBytes: keep, rateBytesPerSecond: rate, files: files)
        let pid = try Spawn.start(argv, environment: ["PATH": "/usr/bin:/bin"].merging(env) { _, b in b }, stdout: output)
        return (pid, output)
    }

    func stage(_ files: [ArtifactStager.File], keep: Int64 = 0, rate: Int64 = 0, env: [String: String] = [:], shell: String = "/bin/sh") throws -> (Int32, ArtifactStager.Report, String) {
        let (pid, output) = try launch(files, keep: keep, rate: rate, env: env, shell: shell)
        let rc = Spawn.wait(pid)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return (rc, ArtifactStager.parse(text, files: files), text)
    }

    func staged(_ path: String) -> Bool { FileManager.default.fileExists(atPath: base + "/node/" + path) }
    /// Bytes of `path` a stopped stager left: the whole file when it was put in place, else its partial file.
    func already(_ path: String, size: Int) -> Int { staged(path) ? size : max(0, partial(path)) }

    func partial(_ path: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: base + "/node/" + path + ".berth-partial"))?[.size] as? Int) ?? -1 }

    @Test func stagesEveryFile_hashChecked_andASecondRunFetchesNothing() throws {
        let (rc, report, text) = try stage(files())
        #expect(rc == 0 && report.outcome == .staged, "\(text)")
        #expect(report.fetched == Int64(aSize + bSize) && report.done == Int64(aSize + bSize))
        #expect(try FileServer.sha256(of: base + "/node/m/v1/model.safetensors") == a)
        #expect(partial("m/v1/model.safetensors") == -1, "no partial file is left")
        let (again, second, _) = try stage(files())
        #expect(again == 0 && second.outcome == .staged && second.fetched == 0, "files in place with the right hash are not fetched again")
    }

    @Test func aCorruptedByteAtTheSourceIsNeverPutInPlace() throws {
        let path = base + "/src/m/v1/model.safetensors"
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(aSize / 2))
        let original = try handle.read(upToCount: 1)![0]
        try handle.seek(toOffset: UInt64(aSize / 2))
        try handle.write(contentsOf: [original ^ 0x01])
        try handle.close()
        let corrupted = try FileServer.sha256(of: path)
        let (rc, report, text) = try stage(files())
        #expect(rc == 3, "\(text)")
        #expect(report.outcome == .mismatch(path: "m/v1/model.safetensors", expected: a, actual: corrupted, size: Int64(aSize)), "\(text)")
        #expect(!staged("m/v1/model.safetensors") && partial("m/v1/model.safetensors") == -1, "neither renamed into place nor kept to resume")
    }

    @Test func aDownloadKilledMidwayResumes_fetchingOnlyTheRest() throws {
        let (pid, _) = try launch(files("slow/"))
        // At 2 MiB/s the 24 MiB file takes 12 s: stop everything once a few MiB are written.
        let deadline = Date().addingTimeInterval(30)
        while partial("m/v1/model.safetensors") < 4 << 20 && Date() < deadline { usleep(100_000) }
        kill(-pid, SIGKILL)
        Spawn.wait(pid)
        usleep(200_000)
        let kept = partial("m/v1/model.safetensors")
        #expect(kept >= 4 << 20 && kept < aSize, "a partial file stays: \(kept) bytes")
        #expect(!staged("m/v1/model.safetensors"))
        let already = kept + self.already("m/v1/config/tokenizer.json", size: bSize)
        let (rc, report, text) = try stage(files())
        #expect(rc == 0 && report.outcome == .staged, "\(text)")
        #expect(report.fetched == Int64(aSize + bSize - already), "only the rest is fetched (\(report.fetched) of \(aSize + bSize), \(already) kept)")
        #expect(try FileServer.sha256(of: base + "/node/m/v1/model.safetensors") == a, "the resumed file is whole")
    }

    @Test func aFullModelRootRefusesWithTheNumbers_beforeTheFirstByte() throws {
        let keep: Int64 = 1 << 60
        let (rc, report, text) = try stage(files(), keep: keep)
        #expect(rc == 5, "\(text)")
        guard case .noSpace(let need, let available, let keepFree)? = report.outcome else {
            Issue.record("not refused for space: \(text)")
            return
        }
        #expect(need == Int64(aSize + bSize) && available > 0 && keepFree == keep)
        #expect(partial("m/v1/model.safetensors") == -1 && !staged("m/v1/model.safetensors"), "nothing written")
    }

    @Test func aMissingFileOrAWrongTokenFails_andARightTokenStages() throws {
        var broken = files()
        broken[0].url = server.url + "m/v1/no-such-file"
        let (rc, report, text) = try stage(broken)
        #expect(rc == 4 && report.outcome == .fetchFailed(path: "m/v1/model.safetensors", detail: "the source answered with an HTTP error (404, 403, …)"), "\(text)")
        let (denied, _, _) = try stage(files("private/"), env: ["BERTH_STAGE_AUTH": "Bearer wrong"])
        #expect(denied == 4)
        let (allowed, ok, out) = try stage(files("private/"), env: ["BERTH_STAGE_AUTH": "Bearer \(server.token)"])
        #expect(allowed == 0 && ok.outcome == .staged, "\(out)")
    }

    @Test func busyboxWget_resumesToo_butRefusesABandwidthCap() throws {
        // An image without curl: busybox's applets only.
        let tools = base + "/busybox-bin"
        try FileManager.default.createDirectory(atPath: tools, withIntermediateDirectories: true)
        for tool in ["sh", "sha256sum", "wget", "stat", "wc", "tee", "rm", "mv", "mkdir", "dirname", "df", "tail", "cat", "sleep", "kill", "sync"] {
            try FileManager.default.createSymbolicLink(atPath: tools + "/" + tool, withDestinationPath: "/bin/busybox")
        }
        let env = ["PATH": tools]
        let (capped, refused, text) = try stage(files(), rate: 1_000_000, env: env, shell: tools + "/sh")
        #expect(capped == 6 && refused.outcome == .unusable("a bandwidth cap needs curl in the stager image"), "\(text)")
        let (pid, _) = try launch(files("slow/"), env: env, shell: tools + "/sh")
        let deadline = Date().addingTimeInterval(30)
        while partial("m/v1/model.safetensors") < 2 << 20 && Date() < deadline { usleep(100_000) }
        kill(-pid, SIGKILL)
        Spawn.wait(pid)
        let kept = partial("m/v1/model.safetensors")
        let already = kept + self.already("m/v1/config/tokenizer.json", size: bSize)
        let (rc, report, out) = try stage(files(), env: env, shell: tools + "/sh")
        #expect(rc == 0 && report.outcome == .staged, "\(out)")
        #expect(kept > 0 && report.fetched == Int64(aSize + bSize - already), "wget -c resumed (\(report.fetched) fetched, \(already) kept)")
        #expect(try FileServer.sha256(of: base + "/node/m/v1/model.safetensors") == a)
    }
}
