import BerthModel

/// Where a gateway's nginx keeps its files.
public struct NginxPaths: Sendable, Hashable {
    /// nginx's prefix (`-p`): relative paths in the configuration resolve here.
    public var prefix: String
    /// The configuration file nginx runs.
    public var config: String
    public var pidFile: String

    public init(prefix: String, config: String, pidFile: String) {
        self.prefix = prefix
        self.config = config
        self.pidFile = pidFile
    }

    /// A managed gateway's own folder under the state folder.
    public static func managed(stateFolder: String, gateway: String) -> NginxPaths {
        let prefix = "\(stateFolder)/gateways/\(gateway)"
        return NginxPaths(prefix: prefix, config: "\(prefix)/nginx.conf", pidFile: "\(prefix)/nginx.pid")
    }

    /// A system nginx: the server block goes to `configPath`, included by the system's configuration.
    /// Without `configPath` or `pidFile`, the defaults lie in `folders`. `Nginx` checks the paths
    /// against the same folders before it writes or signals anything.
    public static func system(gateway: String, spec: GatewaySpec, folders: SystemNginxFolders = .fromEnvironment()) -> NginxPaths {
        let config = spec.configPath ?? folders.defaultConfigPath(gateway: gateway)
        return NginxPaths(prefix: String(folders.config.dropLast()), config: config, pidFile: spec.pidFile ?? folders.defaultPidFile)
    }
}

/// Renders a gateway's nginx configuration. Pure: same input, same text.
public enum NginxConfig {
    /// The whole configuration for a managed nginx, or, for a system nginx (`managed: false`), the
    /// `http`-level block its configuration includes.
    public static func render(gateway name: String, spec: GatewaySpec, members: [UpstreamMember], paths: NginxPaths) -> String {
        let http = httpBlock(gateway: name, spec: spec, members: members)
        guard spec.managed else {
            return "# Written by Berth for gateway \(name); Berth rewrites it on every change. Include it inside `http { }`.\n" + http
        }
        let p = paths.prefix
        return """
            # Written by Berth for gateway \(name); Berth rewrites it on every change.
            worker_processes auto;
            pid \(paths.pidFile);
            error_log \(p)/logs/error.log notice;
            # Old workers finish their requests for this long after a reload, then exit.
            worker_shutdown_timeout \(spec.drain)s;

            events {
                worker_connections 4096;
            }

            http {
                client_body_temp_path \(p)/tmp/body;
                proxy_temp_path \(p)/tmp/proxy;
                fastcgi_temp_path \(p)/tmp/fastcgi;
                uwsgi_temp_path \(p)/tmp/uwsgi;
                scgi_temp_path \(p)/tmp/scgi;
                # No client addresses: access logs must not carry personal data.
                log_format berth '\(accessLogFormat)';
                access_log \(p)/logs/access.log berth buffer=64k flush=1s;

            \(http.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "    " + $0 }.joined(separator: "\n"))
            }

            """
    }

    /// What each request leaves in the access log: never who sent it.
    static let accessLogFormat = "$time_iso8601 $request_method $uri $status $body_bytes_sent $request_time $upstream_addr"

    /// Where a system nginx's access log for the gateway goes (the system's own log format names clients).
    public static func systemAccessLog(gateway name: String) -> String { "/var/log/nginx/berth-\(name).access.log" }

    static func httpBlock(gateway name: String, spec: GatewaySpec, members: [UpstreamMember]) -> String {
        let id = "berth_" + name.replacingOccurrences(of: "-", with: "_")
        let serving = members.filter(\.inService)
        var out = ""
        // The zone is named after its limit: a changed limit starts from a fresh zone rather than
        // inheriting the excess counted under the old rate (which could refuse everyone for minutes).
        let zone = spec.rateLimit.map { "\(id)_" + $0.rate.replacingOccurrences(of: "/", with: "_per_") + "_\($0.burst)" } ?? id
        if let limit = spec.rateLimit {
            out += "limit_req_zone $binary_remote_addr zone=\(zone):10m rate=\(limit.rate);\n"
        }
        var proxy = "return 503 \"no ready replica behind gateway \(name)\\n\";\n"
        if !serving.isEmpty {
            out += "upstream \(id) {\n"
            for m in members {
                if m.inService {
                    out += "    server \(m.endpoint) weight=\(m.weight);  # \(m.deployment) replica \(m.replica)\n"
                } else {
                    out += "    # out: \(m.endpoint) \(m.deployment) replica \(m.replica): \(m.reason)\n"
                }
            }
            out += "    keepalive 64;\n}\n"
            proxy = """
                proxy_pass http://\(id);
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_set_header Host $host;
                proxy_set_header X-Real-IP $remote_addr;
                proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                proxy_set_header X-Forwarded-Proto $scheme;
                # Stream tokens as they come; send request bodies as they arrive.
                proxy_buffering off;
                proxy_request_buffering off;
                proxy_connect_timeout 5s;
                proxy_send_timeout \(spec.readTimeout)s;
                proxy_read_timeout \(spec.readTimeout)s;
                proxy_next_upstream error timeout;
                proxy_next_upstream_tries 2;
                client_max_body_size 64m;

                """
        } else {
            for m in members {
                out += "# out: \(m.endpoint) \(m.deployment) replica \(m.replica): \(m.reason)\n"
            }
        }
        let limit = spec.rateLimit.map { l in
            "limit_req zone=\(zone)" + (l.burst > 0 ? " burst=\(l.burst) nodelay" : "") + ";\nlimit_req_status 429;\n"
        } ?? ""
        var logs = ""
        if !spec.managed {
            out += "log_format \(id) '\(accessLogFormat)';\n"
            logs = "access_log \(systemAccessLog(gateway: name)) \(id);\n"
        }
        // nginx names the client ("client: ADDR") in every message about a request: rate limits,
        // failing replicas, timeouts. Those go nowhere; the access log keeps status and replica.
        // The main error log (reloads, refused configurations) stays.
        logs += "error_log /dev/null emerg;\n"
        out += """
            server {
                listen \(spec.listen);
            \(logs.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                location = /healthz {
                    access_log off;
                    default_type text/plain;
                    return 200 "ok\\n";
                }
                location / {
            \((limit + proxy).split(separator: "\n").map { "        " + $0 }.joined(separator: "\n"))
                }
            }

            """
        return out
    }
}
