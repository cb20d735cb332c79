/// Prometheus' text exposition format, as replicas' and exporters' `/metrics` print it: one
/// sample a line, `name{label="value",…} value [timestamp]`, comments (`#`) skipped. Pure.
public enum PrometheusText {
    public struct Sample {
        public var name: Substring
        /// What stands between the braces, unparsed (empty without labels).
        public var labels: Substring
        public var value: Double
    }

    /// Every sample whose name `wanted` accepts; lines that are not samples are skipped.
    public static func samples(_ text: String, where wanted: (Substring) -> Bool) -> [Sample] {
        var out: [Sample] = []
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            let name = line.prefix { $0 != "{" && $0 != " " }
            guard !name.isEmpty, wanted(name) else { continue }
            var labels: Substring = ""
            var rest = line[name.endIndex...]
            if rest.hasPrefix("{") {
                // Label values may hold `}` inside quotes: the set ends at the last `}`.
                guard let close = rest.lastIndex(of: "}") else { continue }
                labels = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
            }
            // The value is the first field after the name and labels; a timestamp may follow.
            // NaN and ±Inf (which the format allows) are no reading at all for what Berth reads.
            guard let field = rest.split(separator: " ", omittingEmptySubsequences: true).first, let value = Double(field), value.isFinite
            else { continue }
            out.append(Sample(name: name, labels: labels, value: value))
        }
        return out
    }
}
