import Foundation

/// Hosts and `HOST:PORT` text as Berth judges them. Whether a host is this machine decides
/// whether plain TCP to an engine is allowed, whether the controller's API needs a token, and
/// whether a registry is spoken to over plain HTTP; so it is parsed here, once, and never guessed
/// from a prefix (`127.attacker.example` is a name anyone can point anywhere).
public enum NetworkAddress {
    /// Whether `host` is the loopback interface: an IPv4 address in 127.0.0.0/8 written as four
    /// decimal numbers 0–255 without leading zeros, the IPv6 loopback `::1` in any spelling
    /// (`[::1]`, `0:0:0:0:0:0:0:1`, or IPv4-mapped `::ffff:127.0.0.1`), or exactly `localhost` in
    /// any case. Any other name (`127.0.0.1.example`, `localhost.evil`) is not.
    public static func isLoopback(host: String) -> Bool {
        var host = host
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.lowercased() == "localhost" { return true }
        if let octets = ipv4(host) { return octets[0] == 127 }
        guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, host, &bytes) == 1 else { return false }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
        // ::ffff:127.x.y.z
        return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127
    }

    /// The four numbers of a dotted-quad IPv4 address, or nil for anything else (names, fewer or
    /// more parts, numbers past 255, leading zeros, which some resolvers read as octal).
    public static func ipv4(_ text: String) -> [Int]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var octets: [Int] = []
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  part == "0" || !part.hasPrefix("0"), let n = Int(part), n <= 255 else { return nil }
            octets.append(n)
        }
        return octets
    }

    /// Splits `HOST[:PORT]`: `127.0.0.1:7480`, `[::1]:2375`, `registry.local`, `localhost:5000`.
    /// Brackets around an IPv6 host are removed; an IPv6 address without brackets has no port
    /// (`::1`). nil when the port is not a number 0–65535 or brackets are unbalanced.
    public static func split(authority text: String) -> (host: String, port: Int?)? {
        var host = Substring(text)
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":"), text.lastIndex(of: ":") == colon {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else if text.contains("]") {
            return nil
        }
        guard let portText else { return (String(host), nil) }
        guard (1...5).contains(portText.count), portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText), port <= 65535 else { return nil }
        return (String(host), port)
    }
}
