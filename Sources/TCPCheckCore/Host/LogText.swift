// Log lines are hostile input: anyone who can write to a log can put
// terminal escapes in it. Lines leave the host only through `clean`, and
// signatures are looked for with a plain case-insensitive substring search.
public enum LogText {
    /// Valid UTF-8 text without terminal escape sequences (CSI, OSC, DCS...),
    /// control characters or bidi overrides; invalid UTF-8 becomes U+FFFD and
    /// a tab becomes a space.
    public static func clean(_ bytes: [UInt8]) -> String {
        // Most log lines are printable ASCII: nothing to remove, no scalar walk.
        if bytes.allSatisfy({ (0x20...0x7E).contains($0) }) { return String(decoding: bytes, as: UTF8.self) }
        var out = String.UnicodeScalarView()
        var scalars = String(decoding: bytes, as: UTF8.self).unicodeScalars.makeIterator()
        while let c = scalars.next() {
            switch c.value {
            case 0x1B: // ESC: skip the whole sequence
                guard let next = scalars.next() else { break }
                switch next {
                case "[": skipCSI(&scalars)
                case "]", "P", "X", "^", "_": skipString(&scalars)
                default:
                    // ESC, intermediates (0x20-0x2F), one final byte: "ESC ( B".
                    var n: Unicode.Scalar? = next
                    while let s = n, (0x20...0x2F).contains(s.value) { n = scalars.next() }
                }
            case 0x9B: skipCSI(&scalars)
            case 0x90, 0x98, 0x9D, 0x9E, 0x9F: skipString(&scalars)
            case 0x09: out.append(" ")
            case 0x00...0x1F, 0x7F...0x9F: break
            case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F: break // bidi controls
            default: out.append(c)
            }
        }
        return String(out)
    }

    /// CSI: parameters and intermediates up to a final byte in 0x40-0x7E.
    private static func skipCSI(_ s: inout String.UnicodeScalarView.Iterator) {
        while let c = s.next() {
            if (0x40...0x7E).contains(c.value) || c.value < 0x20 || c.value > 0x7E { return }
        }
    }

    /// OSC, DCS, SOS, PM, APC: a string up to BEL, ESC \ or ST (0x9C).
    private static func skipString(_ s: inout String.UnicodeScalarView.Iterator) {
        while let c = s.next() {
            switch c.value {
            case 0x07, 0x9C: return
            case 0x1B: _ = s.next(); return
            default: continue
            }
        }
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
