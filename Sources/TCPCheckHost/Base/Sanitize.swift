// Text from checks, logs and processes is untrusted: strip what could
// steer a terminal (escape sequences, C0/C1 controls) or make text read
// otherwise than it is (bidi and other invisible format characters).
// Every string of a check's result passes through here once, so no report
// format can be used to inject them.
public enum Sanitize {
    /// Removes escape sequences and control characters. Newlines and tabs
    /// survive when `multiline` is true; otherwise they become spaces.
    public static func text(_ s: String, multiline: Bool = true) -> String {
        if isPlain(s.utf8, multiline: multiline) { return s }
        var out = String.UnicodeScalarView()
        var it = s.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let p = pending { pending = nil; return p }
            return it.next()
        }
        while let c = next() {
            switch c.value {
            case 0x1B: // ESC: drop the whole sequence
                guard let k = next() else { break }
                if k == "[" { // CSI: parameters, then one final byte 0x40-0x7E
                    while let x = next(), !(0x40...0x7E).contains(x.value) {}
                } else if k == "]" || k == "P" || k == "X" || k == "^" || k == "_" { // OSC/DCS/...: until BEL or ESC \
                    while let x = next() {
                        if x.value == 0x07 { break }
                        if x.value == 0x1B { _ = next(); break }
                    }
                }
                // Other two-character sequences (ESC c, ESC 7 ...) end here.
            case 0x9B: // C1 CSI
                while let x = next(), !(0x40...0x7E).contains(x.value) {}
            case 0x9D: // C1 OSC
                while let x = next(), x.value != 0x07, x.value != 0x9C {}
            case 0x0A, 0x09:
                out.append(multiline ? c : " ")
            case 0x0D:
                // A CR alone could overwrite a line on a terminal; CRLF is a newline.
                if let n = next() {
                    if n.value != 0x0A { out.append(multiline ? "\n" : " ") }
                    pending = n
                }
            case 0x00...0x1F, 0x7F, 0x80...0x9F:
                continue
            case 0x2028, 0x2029: // line and paragraph separators end a line too
                out.append(multiline ? "\n" : " ")
            default:
                // Format characters (bidi marks and overrides such as U+061C and
                // U+202E, zero-width spaces and joiners, U+FEFF, tag characters)
                // can make text read differently than it is, or hide in it.
                if c.properties.generalCategory == .format { continue }
                out.append(c)
            }
        }
        return String(out)
    }

    public static func line(_ s: String) -> String { text(s, multiline: false) }

    /// True when the bytes are printable ASCII (and newlines and tabs when
    /// `multiline`): nothing to remove, which is most text, read fast.
    /// Contiguous bytes (an array, a native string's UTF-8) are read as a
    /// buffer: called from another module the generic loop costs a witness
    /// call per byte.
    public static func isPlain<Bytes: Sequence<UInt8>>(_ bytes: Bytes, multiline: Bool = true) -> Bool {
        if let plain = bytes.withContiguousStorageIfAvailable({ isPlain(buffer: $0, multiline: multiline) }) { return plain }
        for b in bytes where b < 0x20 || b > 0x7E {
            if !(multiline && (b == 0x0A || b == 0x09)) { return false }
        }
        return true
    }

    private static func isPlain(buffer: UnsafeBufferPointer<UInt8>, multiline: Bool) -> Bool {
        for b in buffer where b < 0x20 || b > 0x7E {
            if !(multiline && (b == 0x0A || b == 0x09)) { return false }
        }
        return true
    }
}
