// Log lines are hostile input: anyone who can write to a log can put
// terminal escapes in it. Lines leave the host only through `clean`, and
// signatures are looked for with a plain case-insensitive substring search.

public enum LogText {
    /// Valid UTF-8 on one line, without terminal escapes or control
    /// characters: Sanitize.line, after decoding (invalid UTF-8 becomes U+FFFD).
    public static func clean(_ bytes: [UInt8]) -> String {
        // Most log lines are printable ASCII: nothing to remove, no scalar walk.
        if bytes.allSatisfy({ (0x20...0x7E).contains($0) }) { return String(decoding: bytes, as: UTF8.self) }
        return Sanitize.line(String(decoding: bytes, as: UTF8.self))
    }

    /// Signatures to look for, lowercased once, found in one pass over a line:
    /// a needle is compared only where its first two bytes stand.
    public struct Needles {
        let needles: [[UInt8]]
        /// Needle indexes by their first two bytes, and a bitmap of those pairs (a quick "none here").
        let byPair: [UInt16: [Int]]
        let pairBits: [UInt64]
        /// Needles shorter than two bytes.
        let short: [Int]

        public init(_ strings: [String]) {
            needles = strings.map { Array($0.lowercased().utf8) }
            var byPair: [UInt16: [Int]] = [:], bits = [UInt64](repeating: 0, count: 1024), short: [Int] = []
            for (k, n) in needles.enumerated() {
                guard n.count >= 2 else { short.append(k); continue }
                let pair = UInt16(n[0]) << 8 | UInt16(n[1])
                byPair[pair, default: []].append(k)
                bits[Int(pair >> 6)] |= 1 << UInt64(pair & 63)
            }
            (self.byPair, pairBits, self.short) = (byPair, bits, short)
        }

        public var isEmpty: Bool { needles.isEmpty }

        /// 1-based index of the first needle `text` contains, ignoring ASCII case.
        public func firstMatch(in text: String) -> Int? {
            var hay = Array(text.utf8)
            for i in hay.indices where (65...90).contains(hay[i]) { hay[i] |= 0x20 }
            var best = Int.max
            for k in short where needles[k].isEmpty || hay.contains(needles[k][0]) { best = min(best, k) }
            hay.withUnsafeBufferPointer { h in
                guard h.count >= 2 else { return }
                for i in 0..<(h.count - 1) {
                    let pair = UInt16(h[i]) << 8 | UInt16(h[i + 1])
                    guard pairBits[Int(pair >> 6)] & (1 << UInt64(pair & 63)) != 0 else { continue }
                    for k in byPair[pair] ?? [] where k < best {
                        let n = needles[k]
                        if h.count - i >= n.count && (2..<n.count).allSatisfy({ h[i + $0] == n[$0] }) { best = k }
                    }
                }
            }
            return best == .max ? nil : best + 1
        }
    }
}
