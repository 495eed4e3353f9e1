// The JSON report (schema documented in docs/json-schema.md).
import Foundation
import TCPCheckHost

public struct JSONReport: ReportFormat {
    public let name = "json"
    public let help = "For programs: every check's findings and data, and the verdict; several targets in one document (docs/json-schema.md)."
    public let usesColor = false

    public init() {}

    /// One target's report: the whole document of schema 1 (with `schema`
    /// and `tool`), or an element of schema 2's `targets` (without them).
    struct Document: Encodable {
        var schema: Int?
        var tool: Tool?
        let label: String?
        let target: Target?
        let started_at: String
        let duration_ms: Double
        let exit_code: Int32
        let checks: [Check]
        let verdict: VerdictDoc
    }
    /// Several targets: schema 2.
    struct MultiDocument: Encodable {
        let schema = 2
        let tool: Tool
        let started_at: String
        let duration_ms: Double
        let parallel: Int
        let exit_code: Int32
        let summary: Summary
        let targets: [Document]
    }
    struct Summary: Encodable {
        let targets: Int
        let ok: Int
        let problem: Int
        let unknown: Int
        /// Targets whose verdict is ok but a step failed or errored.
        let failed_steps: Int
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

    static let tool = Tool(name: "tcpcheck", version: TCPCheck.version)

    /// One target: schema 1, as before several targets were possible. Several: schema 2.
    public func render(_ set: RunSet, style: ReportStyle) -> String {
        guard set.isMulti else { return set.runs.map { Self.encode(Self.document($0, whole: true), pretty: true) }.joined() }
        let statuses = set.runs.map(\.report.verdict.status)
        let doc = MultiDocument(
            tool: Self.tool, started_at: Self.rfc3339(set.startedAt), duration_ms: ReportNumber.rounded(set.durationMs),
            parallel: set.parallel, exit_code: set.exitCode,
            summary: Summary(targets: set.runs.count, ok: statuses.filter { $0 == .ok }.count,
                             problem: statuses.filter { $0 == .problem }.count, unknown: statuses.filter { $0 == .unknown }.count,
                             failed_steps: set.runs.filter { $0.report.verdict.status == .ok && $0.report.exitCode != 0 }.count),
            targets: set.runs.map { Self.document($0, whole: false) })
        return Self.encode(doc, pretty: true)
    }

    /// Pretty-printed (one document) or compact (one line of JSON Lines), keys sorted; ends in a newline.
    static func encode<T: Encodable>(_ value: T, pretty: Bool) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else {
            return #"{"schema":1,"error":"the report could not be encoded"}"# + "\n"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func document(_ run: TargetRun, whole: Bool) -> Document {
        let report = run.report
        return Document(
            schema: whole ? 1 : nil,
            tool: whole ? tool : nil,
            label: run.label.map(Sanitize.line),
            target: report.target.map {
                Target(host: $0.spec.host, port: $0.spec.port, addresses: $0.resolution.ordered.map(\.ipWithScope),
                       resolve_error: $0.resolution.failure?.rawValue, resolve_message: $0.resolution.message.map(Sanitize.line))
            },
            started_at: rfc3339(report.startedAt),
            duration_ms: ReportNumber.rounded(report.durationMs),
            exit_code: report.exitCode,
            checks: report.results.map {
                Check(id: $0.id, title: $0.title, status: $0.status.rawValue, summary: $0.summary,
                      duration_ms: ReportNumber.rounded($0.durationMs), findings: $0.findings, data: $0.data, causes: $0.causes,
                      output: $0.output.isEmpty ? nil : $0.output)
            },
            verdict: VerdictDoc(status: report.verdict.status.rawValue, causes: report.verdict.causes.map {
                CauseDoc(id: $0.id, confidence: $0.confidence.rawValue, summary: $0.summary, evidence: $0.evidence, fix: $0.fix, checks: $0.checks)
            }, method: report.verdict.method.rawValue, notes: report.verdict.notes, server_command: report.verdict.serverCommand,
               duration_ms: ReportNumber.rounded(report.verdict.durationMs))
        )
    }

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
        case .double(let d): if d.isFinite { try c.encode(ReportNumber.rounded(d)) } else { try c.encodeNil() }
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
