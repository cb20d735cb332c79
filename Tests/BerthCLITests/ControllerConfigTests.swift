import BerthTesting
import Foundation
import Testing

/// `berth controller`'s settings file: every flag may come from it, flags win, problems are
/// refused with their line; `--print-config` says where each value came from; the service's
/// readiness through sd_notify.
@Suite struct ControllerConfigTests {
    /// The long options of `berth controller --help`, without the dashes.
    static func helpFlags() throws -> Set<String> {
        let help = try BerthProcess.run(["controller", "--help"]).stdout
        var names = Set<String>()
        for line in help.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            for word in trimmed.split(separator: " ").prefix(3) where word.hasPrefix("--") {
                names.insert(String(word.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" }))
            }
        }
        return names
    }

    /// `name → (value, origin)` from `--print-config`; unset settings have value nil.
    static func printed(_ text: String) -> [String: (value: String?, origin: String)] {
        var result: [String: (String?, String)] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let parts = line.components(separatedBy: "# ")
            let origin = parts.last!.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("# ") {
                let name = String(parts[1].prefix { $0 != ":" })
                result[name] = (nil, origin)
            } else {
                let setting = parts[0].trimmingCharacters(in: .whitespaces)
                let colon = setting.firstIndex(of: ":")!
                result[String(setting[..<colon])] = (setting[setting.index(after: colon)...].trimmingCharacters(in: .whitespaces), origin)
            }
        }
        return result
    }

    @Test func everyFlagIsASetting() throws {
        let result = try BerthProcess.run(["controller", "--config", "none", "--print-config"])
        #expect(result.code == 0, "\(result.stderr)")
        let settings = Set(Self.printed(result.stdout).keys)
        // Flags about the file itself, and --no-create-state (the inversion of create-state).
        let flags = try Self.helpFlags().subtracting(["config", "print-config", "help", "version", "no-create-state"])
        #expect(flags.count > 20)
        #expect(flags == settings, "flags without a setting: \(flags.subtracting(settings)); settings without a flag: \(settings.subtracting(flags))")
        // With nothing set, everything is a default and the state is the default one.
        let values = Self.printed(result.stdout)
        #expect(values.values.allSatisfy { $0.origin == "default" })
        #expect(values["state"]?.value == "state/berth.db")
        #expect(values["interval"]?.value == "5")
    }

    @Test func flagsWinOverTheFileWhichWinsOverTheEnvironment() throws {
        let dir = BerthProcess.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        write("""
            # a comment
            interval: 2
            listen: off
            state: \(dir)/from-file.db
            node-failure-threshold: 4
            stager-image: "registry.local:5000/stager:1"
            create-state: true
            """, to: dir + "/controller.yaml")
        let result = try BerthProcess.run(["controller", "--config", dir + "/controller.yaml", "--print-config", "--interval", "3"],
                                          environment: ["BERTH_STATE": dir + "/from-env.db", "BERTH_SECRETS_DIR": "/srv/secrets"])
        #expect(result.code == 0, "\(result.stderr)")
        let values = Self.printed(result.stdout)
        #expect(values["interval"]?.value == "3" && values["interval"]?.origin == "--interval")
        #expect(values["state"]?.value == dir + "/from-file.db" && values["state"]?.origin == dir + "/controller.yaml:4")
        #expect(values["listen"]?.value == "\"off\"" && values["listen"]?.origin == dir + "/controller.yaml:3")
        #expect(values["node-failure-threshold"]?.value == "4")
        #expect(values["stager-image"]?.value == "registry.local:5000/stager:1")
        #expect(values["create-state"]?.value == "true")
        #expect(values["secrets-dir"]?.value == "/srv/secrets" && values["secrets-dir"]?.origin == "$BERTH_SECRETS_DIR")
        #expect(values["lease-ttl"]?.origin == "default")
        // What --print-config prints is itself a settings file that reads back the same.
        write(result.stdout, to: dir + "/printed.yaml")
        let again = try BerthProcess.run(["controller", "--config", dir + "/printed.yaml", "--print-config"])
        #expect(again.code == 0, "\(again.stderr)")
        #expect(Self.printed(again.stdout).mapValues(\.value).filter { $0.value != nil } == values.mapValues(\.value).filter { $0.value != nil })
    }

    @Test func aTypoOrAWrongValueIsRefusedWithItsLine() throws {
        let dir = BerthProcess.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        write("interval: 2\nbusy-intervall: 0.5\nlease-ttl: fast\nstaging-per-node: 0\n", to: dir + "/controller.yaml")
        let result = try BerthProcess.run(["controller", "--config", dir + "/controller.yaml"], state: dir + "/berth.db")
        #expect(result.code == 2)
        #expect(result.stderr.contains("\(dir)/controller.yaml:2:1: busy-intervall: unknown field \"busy-intervall\" (did you mean \"busy-interval\"?)"), "\(result.stderr)")
        #expect(result.stderr.contains("\(dir)/controller.yaml:3:12: lease-ttl: got the string \"fast\"; expected a number from 1"))
        #expect(result.stderr.contains("\(dir)/controller.yaml:4:19: staging-per-node: 0 is out of range"))
        #expect(result.stderr.contains("3 errors; the settings file was not used"))
        // Nothing started: no state was created.
        #expect(!FileManager.default.fileExists(atPath: dir + "/berth.db"))

        for (text, problem) in [("- interval: 2\n", "got a list; expected a mapping of settings"), ("base: &a { interval: 2 }\n<<: *a\n", "merge"), ("interval: 2\ninterval: 3\n", "interval")] {
            write(text, to: dir + "/bad.yaml")
            let bad = try BerthProcess.run(["controller", "--config", dir + "/bad.yaml", "--print-config"])
            #expect(bad.code == 2, "\(text)")
            #expect(bad.stderr.contains(dir + "/bad.yaml:") && bad.stderr.contains(problem), "\(bad.stderr)")
        }
        // Values with a shape of their own are checked in the file with their line, and as flags.
        write("copy-ports: 9-1\nlog-level: loud\nlisten: nowhere\n", to: dir + "/shapes.yaml")
        let shapes = try BerthProcess.run(["controller", "--config", dir + "/shapes.yaml", "--print-config"])
        #expect(shapes.code == 2 && shapes.stderr.contains("shapes.yaml:1:13: copy-ports: \"9-1\" is not valid")
                && shapes.stderr.contains("shapes.yaml:2:12: log-level") && shapes.stderr.contains("shapes.yaml:3:9: listen"), "\(shapes.stderr)")
        let tiny = try BerthProcess.run(["controller", "--config", "none", "--interval", "0.0001", "--log-level", "loud", "--print-config"])
        #expect(tiny.code == 64 && tiny.stderr.contains("--interval 0.0001 is too small") && tiny.stderr.contains("--log-level \"loud\" is not valid"), "\(tiny.stderr)")
        let missing = try BerthProcess.run(["controller", "--config", dir + "/nope.yaml", "--print-config"])
        #expect(missing.code == 2 && missing.stderr.contains("nope.yaml: does not exist"))
    }

    /// The file the package installs as /etc/berth/controller.yaml is valid and names every setting.
    @Test func shippedSettingsFileIsValidAndComplete() throws {
        let path = BerthProcess.root.path + "/packaging/controller.yaml"
        let result = try BerthProcess.run(["controller", "--config", path, "--print-config"])
        #expect(result.code == 0, "\(result.stderr)")
        let values = Self.printed(result.stdout)
        #expect(values["state"]?.value == "/var/lib/berth/berth.db")
        #expect(values["create-state"]?.value == "true")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for name in values.keys {
            #expect(text.contains("\n\(name): ") || text.contains("\n#\(name): "), "packaging/controller.yaml does not mention \(name)")
        }
    }

    /// Under a `Type=notify` unit: READY=1 arrives once the API listens, naming its address; a
    /// missing state is created only when create-state says so.
    @Test func readinessThroughSdNotify() throws {
        let dir = BerthProcess.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let socketPath = dir + "/notify.sock"
        let fd = try NotifySocket.bind(socketPath)
        defer { close(fd) }

        let refused = try BerthProcess.run(["controller", "--config", "none", "--listen", "off"], state: dir + "/berth.db")
        #expect(refused.code == 4 && refused.stderr.contains("berth.db: no state database here yet"), "\(refused.stderr)")

        var env = ProcessInfo.processInfo.environment
        env["NOTIFY_SOCKET"] = socketPath
        env["BERTH_STATE"] = nil
        let pid = try Spawn.start([BerthProcess.binary.path, "controller", "--config", "none", "--create-state", "--state", dir + "/berth.db",
                                   "--listen", "127.0.0.1:0", "--interval", "30"], environment: env, stdout: dir + "/controller.log")
        defer { kill(pid, SIGTERM); Spawn.wait(pid) }
        let message = NotifySocket.receive(fd, timeout: 20)
        #expect(message?.contains("READY=1") == true, "got \(message ?? "nothing"); log: \((try? String(contentsOfFile: dir + "/controller.log", encoding: .utf8)) ?? "")")
        let address = message?.components(separatedBy: "http://").last.map { $0.prefix { !$0.isWhitespace } }
        #expect(BerthProcess.httpStatus("http://\(address ?? "")/healthz") == 200)
        #expect(FileManager.default.fileExists(atPath: dir + "/berth.db"))
    }
}

/// A unix datagram socket standing in for systemd's notify socket.
enum NotifySocket {
    static func bind(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, rc == 0 else { throw POSIXError(.EADDRINUSE) }
        return fd
    }

    /// The next datagram, or nil after `timeout` seconds.
    static func receive(_ fd: Int32, timeout: Double) -> String? {
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&poll, 1, Int32(timeout * 1000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? String(decoding: buffer[..<n], as: UTF8.self) : nil
    }
}
