import Foundation

/// Where the files of a gateway with `managed: false` may lie: Berth writes its block at
/// `configPath` (renaming a candidate over it) and signals the pid read from `pidFile`, so both are
/// confined to the system nginx's own folders. A managed gateway keeps its files under the state
/// folder and sets neither.
public struct SystemNginxFolders: Sendable, Hashable {
    /// The folder `configPath` must lie under, ending in `/`.
    public var config: String
    /// The folders `pidFile` may lie under, each ending in `/`.
    public var pid: [String]

    public init(config: String, pid: [String]) {
        self.config = config
        self.pid = pid
    }

    /// Debian's and most distributions' nginx.
    public static let standard = SystemNginxFolders(config: "/etc/nginx/", pid: ["/run/", "/var/run/"])

    /// Environment variables with which an operator names the folders of an nginx installed
    /// elsewhere (both absolute, e.g. `/usr/local/nginx/conf/`); the same on the machines that
    /// apply manifests and the one that runs the controller.
    public static let configVariable = "BERTH_NGINX_CONF_DIR"
    public static let pidVariable = "BERTH_NGINX_PID_DIR"

    /// `standard`, with the folders named by `BERTH_NGINX_CONF_DIR` / `BERTH_NGINX_PID_DIR` instead
    /// where set. A value that is not a clean absolute folder is ignored for the standard one:
    /// paths are then checked against the standard folders, which is the safe side.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> SystemNginxFolders {
        var folders = standard
        func folder(_ variable: String) -> String? {
            guard var value = environment[variable], !value.isEmpty else { return nil }
            if !value.hasSuffix("/") { value += "/" }
            return syntaxProblem(String(value.dropLast())) == nil ? value : nil
        }
        if let c = folder(configVariable) { folders.config = c }
        if let p = folder(pidVariable) { folders.pid = [p] }
        return folders
    }

    /// Where `configPath` goes when the manifest does not say.
    public func defaultConfigPath(gateway: String) -> String { "\(config)conf.d/berth-\(gateway).conf" }
    /// Where the pid file is read from when the manifest does not say.
    public var defaultPidFile: String { "\(pid[0])nginx.pid" }

    /// nil when `path` may be a gateway's `configPath`; else what is wrong and what would be valid.
    public func check(configPath path: String) -> (problem: String, expected: String)? {
        let expected = "an absolute path under \(config) ending in .conf, such as \(defaultConfigPath(gateway: "public")) (\(Self.configVariable) names another folder)"
        if let problem = Self.syntaxProblem(path) { return (problem, expected) }
        guard path.hasPrefix(config) else { return ("lies outside \(config)", expected) }
        guard path.hasSuffix(".conf"), !path.hasSuffix("/.conf") else { return ("does not name a .conf file", expected) }
        guard path != config + "nginx.conf" else { return ("is nginx's main configuration, which Berth would replace", expected) }
        return nil
    }

    /// nil when `path` may be a gateway's `pidFile`; else what is wrong and what would be valid.
    public func check(pidFile path: String) -> (problem: String, expected: String)? {
        let expected = "an absolute path under \(pid.joined(separator: " or ")), such as \(defaultPidFile) (\(Self.pidVariable) names another folder)"
        if let problem = Self.syntaxProblem(path) { return (problem, expected) }
        guard pid.contains(where: { path.hasPrefix($0) }) else { return ("lies outside \(pid.joined(separator: " and "))", expected) }
        return nil
    }

    /// The shape every such path has: absolute, normalized, of letters, digits, `/`, `-`, `_`, `.`.
    static func syntaxProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "is not an absolute path" }
        guard path.count <= 1024 else { return "is longer than 1024 characters" }
        guard path.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "/-_.".unicodeScalars.contains($0)) }) else {
            return "has characters other than letters, digits, '/', '-', '_' and '.'"
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !segments.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            return "is not normalized (no '.' or '..' segments, no '//', no '/' at the end)"
        }
        return nil
    }
}
