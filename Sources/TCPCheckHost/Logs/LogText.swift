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

    /// Signatures to look for, lowercased once.
    public struct Needles {
        let needles: [[UInt8]]
        public init(_ strings: [String]) { needles = strings.map { Array($0.lowercased().utf8) } }
        public var isEmpty: Bool { needles.isEmpty }

        /// 1-based index of the first needle `text` contains, ignoring ASCII case.
        public func firstMatch(in text: String) -> Int? {
            var hay = Array(text.utf8)
            for i in hay.indices where (65...90).contains(hay[i]) { hay[i] |= 0x20 }
            for (k, needle) in needles.enumerated() where contains(hay, needle) { return k + 1 }
            return nil
        }

        private func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
            guard let first = needle.first else { return true }
            guard hay.count >= needle.count else { return false }
            var i = 0
            let last = hay.count - needle.count
            while i <= last {
                if hay[i] == first {
                    var j = 1
                    while j < needle.count && hay[i + j] == needle[j] { j += 1 }
                    if j == needle.count { return true }
                }
                i += 1
            }
            return false
        }
    }
}
