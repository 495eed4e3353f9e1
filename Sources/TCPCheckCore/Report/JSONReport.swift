// The JSON report (schema documented in docs/json-schema.md).
import Foundation
import TCPCheckHost

public struct JSONReport: ReportFormat {
    public let name = "json"
    public let help = "For programs: every check's findings and data, and the verdict (docs/json-schema.md)."
    public let usesColor = false

    public init() {}

    struct Document: Encodable {
        let schema = 1
        let tool: Tool
        let target: Target?
        let started_at: String
        let duration_ms: Double
        let checks: [Check]
        let verdict: VerdictDoc
    }
    struct Tool: Encodable { let name: String; let version: String }
    struct Target: Encodable {
        let host: String
        let port: Int
        let addresses: [String]
        let resolve_error: String?
        let resolve_message: String?
    }
    struct Check: Encodable {
        let id: String
        let title: String
        let status: String
        let summary: String
        let duration_ms: Double
        let findings: [Finding]
        let data: LuaValue
        let causes: [Cause]
        let output: [String]?
    }
    struct VerdictDoc: Encodable {
        let status: String
        let causes: [CauseDoc]
        /// "rules", or "plain_merge" when the correlation rules failed (notes say why).
        let method: String
        let notes: [String]
        let server_command: String?
        let duration_ms: Double
    }
    struct CauseDoc: Encodable {
        let id: String
        let confidence: String
        let summary: String
        let evidence: [String]
        let fix: [String]
        let checks: [String]
    }

    public func render(_ report: RunReport, style: ReportStyle) -> String {
        let doc = Document(
            tool: Tool(name: "tcpcheck", version: TCPCheck.version),
            target: report.target.map {
                Target(host: $0.spec.host, port: $0.spec.port, addresses: $0.resolution.ordered.map(\.ipWithScope),
                       resolve_error: $0.resolution.failure?.rawValue, resolve_message: $0.resolution.message.map(Sanitize.line))
            },
            started_at: Self.rfc3339(report.startedAt),
            duration_ms: Self.rounded(report.durationMs),
            checks: report.results.map {
                Check(id: $0.id, title: $0.title, status: $0.status.rawValue, summary: $0.summary,
                      duration_ms: Self.rounded($0.durationMs), findings: $0.findings, data: $0.data, causes: $0.causes,
                      output: $0.output.isEmpty ? nil : $0.output)
            },
            verdict: VerdictDoc(status: report.verdict.status.rawValue, causes: report.verdict.causes.map {
                CauseDoc(id: $0.id, confidence: $0.confidence.rawValue, summary: $0.summary, evidence: $0.evidence, fix: $0.fix, checks: $0.checks)
            }, method: report.verdict.method.rawValue, notes: report.verdict.notes, server_command: report.verdict.serverCommand,
               duration_ms: Self.rounded(report.verdict.durationMs))
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(doc) else {
            return #"{"schema":1,"error":"the report could not be encoded"}"# + "\n"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func rounded(_ ms: Double) -> Double { (ms * 1000).rounded() / 1000 }

    static func rfc3339(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }
}

// Lua data as JSON: a sequence becomes an array, anything else an object
// with string keys; an empty table is an empty object.
extension LuaValue: Encodable {
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .nil, .opaque: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): if d.isFinite { try c.encode(d) } else { try c.encodeNil() }
        case .string: try c.encode(stringValue!)
        case .table(let t):
            if t.isArray && !t.entries.isEmpty {
                try c.encode(t.array)
            } else {
                var object: [String: LuaValue] = [:]
                for (k, v) in t.entries { object[k.description] = v }
                try c.encode(object)
            }
        }
    }
}
