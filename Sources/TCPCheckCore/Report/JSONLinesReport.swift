// JSON Lines: one line per target, each a complete schema-1 document (the
// one `--format json` prints for one target), for log shippers and `jq -c`.
public struct JSONLinesReport: ReportFormat {
    public let name = "jsonl"
    public let help = "For log pipelines: one line per target, each the one-target JSON document (docs/json-schema.md)."
    public let usesColor = false

    public init() {}

    public func render(_ set: RunSet, style: ReportStyle) -> String {
        set.runs.map { JSONReport.encode(JSONReport.document($0, whole: true), pretty: false) }.joined()
    }
}
