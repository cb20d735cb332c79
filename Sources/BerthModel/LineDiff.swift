/// Line-based unified diffs, as `diff -u` prints them.
public enum LineDiff {
    enum Op: Equatable {
        case same(String), removed(String), added(String)
    }

    /// A unified diff of `old` and `new` with `context` lines around each change; empty when equal.
    public static func unified(old: String, new: String, oldLabel: String, newLabel: String, context: Int = 3) -> String {
        let a = lines(old), b = lines(new)
        if a == b { return "" }
        let ops = diff(a, b)
        var out = "--- \(oldLabel)\n+++ \(newLabel)\n"
        // Group changes into hunks with context.
        var i = 0
        let changed = ops.indices.filter { if case .same = ops[$0] { false } else { true } }
        while i < changed.count {
            var start = max(0, changed[i] - context)
            var end = min(ops.count - 1, changed[i] + context)
            var j = i + 1
            while j < changed.count, changed[j] - context <= end + 1 {
                end = min(ops.count - 1, changed[j] + context)
                j += 1
            }
            start = max(0, start)
            // Line numbers at the hunk start.
            var oldLine = 1, newLine = 1
            for op in ops[..<start] {
                switch op {
                case .same: oldLine += 1; newLine += 1
                case .removed: oldLine += 1
                case .added: newLine += 1
                }
            }
            var oldCount = 0, newCount = 0, body = ""
            for op in ops[start...end] {
                switch op {
                case .same(let l): oldCount += 1; newCount += 1; body += " \(l)\n"
                case .removed(let l): oldCount += 1; body += "-\(l)\n"
                case .added(let l): newCount += 1; body += "+\(l)\n"
                }
            }
            out += "@@ -\(oldCount == 0 ? oldLine - 1 : oldLine),\(oldCount) +\(newCount == 0 ? newLine - 1 : newLine),\(newCount) @@\n" + body
            i = j
        }
        return out
    }

    static func lines(_ text: String) -> [String] {
        if text.isEmpty { return [] }
        // Split on the newline byte: splitting Characters runs grapheme breaking over every byte.
        var parts = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    /// Longest-common-subsequence diff; texts too large for the table are shown as replaced whole.
    static func diff(_ a: [String], _ b: [String]) -> [Op] {
        // Trim the common prefix and suffix first: most object diffs touch a few lines.
        var prefix = 0
        while prefix < a.count, prefix < b.count, a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix, suffix < b.count - prefix, a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let x = Array(a[prefix..<(a.count - suffix)]), y = Array(b[prefix..<(b.count - suffix)])
        var middle: [Op] = []
        if x.count * y.count > 4_000_000 {
            middle = x.map(Op.removed) + y.map(Op.added)
        } else {
            let n = x.count, m = y.count
            var table = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    table[i][j] = x[i] == y[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
                }
            }
            var i = 0, j = 0
            while i < n || j < m {
                if i < n, j < m, x[i] == y[j] {
                    middle.append(.same(x[i])); i += 1; j += 1
                } else if i < n, j == m || table[i + 1][j] >= table[i][j + 1] {
                    middle.append(.removed(x[i])); i += 1
                } else {
                    middle.append(.added(y[j])); j += 1
                }
            }
        }
        return a[..<prefix].map(Op.same) + middle + a[(a.count - suffix)...].map(Op.same)
    }
}
