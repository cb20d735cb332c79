import BerthRuntime
import Foundation
import NIOCore
import NIOHTTP1

extension SimulatedEngine {
    static func labelFilters(_ text: String?) -> [String] {
        guard let text, let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [] }
        if let list = object["label"] as? [String] { return list }
        if let map = object["label"] as? [String: Bool] { return Array(map.keys) }
        return []
    }

    static func matches(_ labels: [String: String], _ filters: [String]) -> Bool {
        filters.allSatisfy { f in
            let kv = f.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let value = labels[String(kv[0])] else { return false }
            return kv.count == 1 || value == kv[1]
        }
    }

    /// `name` → `name:latest`; a reference with a tag or digest stays as it is.
    static func normalised(_ ref: String) -> String {
        let last = ref.split(separator: "/").last ?? ""
        return last.contains(":") || ref.contains("@") ? ref : ref + ":latest"
    }

    static func status(_ c: Container, now: Date) -> String {
        switch c.state {
        case "running": "Up \(humanDuration(now.timeIntervalSince(c.startedAt ?? now)))"
        case "exited": "Exited (\(c.exitCode)) \(humanDuration(now.timeIntervalSince(c.finishedAt ?? now))) ago"
        default: "Created"
        }
    }

    /// Docker's wording of a container's age in its list answer (go-units' `HumanDuration`): it
    /// changes every second only in the first minute, then every minute, then every hour.
    static func humanDuration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval)
        if seconds < 1 { return "Less than a second" }
        if seconds == 1 { return "1 second" }
        if seconds < 60 { return "\(seconds) seconds" }
        let minutes = seconds / 60
        if minutes == 1 { return "About a minute" }
        if minutes < 60 { return "\(minutes) minutes" }
        let hours = Int(interval / 3600 + 0.5)
        if hours == 1 { return "About an hour" }
        if hours < 48 { return "\(hours) hours" }
        if hours < 24 * 7 * 2 { return "\(hours / 24) days" }
        if hours < 24 * 30 * 2 { return "\(hours / 24 / 7) weeks" }
        if hours < 24 * 365 * 2 { return "\(hours / 24 / 30) months" }
        return "\(hours / 24 / 365) years"
    }

    static func randomID() -> String {
        (0..<4).map { _ in String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }.joined()
    }
}

// The engine's JSON shapes, named as the Engine API names them.
struct ContainerRow: Encodable {
    var Id: String, Names: [String], Image: String, Labels: [String: String], State: String, Status: String
    var Ports: [String], Created: Int64
}

struct ImageRow: Encodable {
    var Id: String, RepoTags: [String], Size: Int64, Labels: [String: String], Created: Int64
}

struct CreateBody: Decodable {
    var Image: String
    var Env: [String]?
    var Cmd: [String]?
    var Labels: [String: String]?
    var HostConfig: Host?
    struct Host: Decodable { var NetworkMode: String? }
}

struct Details: Encodable {
    var Id: String, Name: String, Image: String, Created: String
    var State: StateView
    var Config: ConfigView
    var HostConfig: HostView
    struct StateView: Encodable {
        var Status: String, Running: Bool, Paused: Bool, OOMKilled: Bool, Dead: Bool, Pid: Int, ExitCode: Int, StartedAt: String, FinishedAt: String
    }
    struct ConfigView: Encodable { var Image: String, Env: [String], Cmd: [String]?, Labels: [String: String] }
    struct HostView: Encodable { var NetworkMode: String }
}

struct Event: Encodable {
    var status: String, id: String, from: String, `Type`: String, Action: String
    var Actor: ActorView
    var scope: String, time: Int64, timeNano: Int64
    struct ActorView: Encodable { var ID: String, Attributes: [String: String] }
}
