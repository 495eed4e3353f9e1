// The fields a check's table may hold, with their LuaLS types: what
// `tcpcheck lint` accepts and what the editor stubs describe. The catalog
// reads them (CheckCatalog.metadata); a field it learns belongs here too,
// or linting the built-in checks fails (AuthoringCLITests).
public enum CheckFields {
    public static let all: [(name: String, type: String, doc: String)] = [
        ("id", "string", "a-z, 0-9 and _; a built-in's id replaces the built-in"),
        ("title", "string?", "one line, for the report"),
        ("description", "string?", "what the check does (tcpcheck show prints it)"),
        ("order", "number?", "place in the sequence: built-ins use 10..70, the default is 1000"),
        ("tags", "string[]?", "words to group checks by"),
        ("inspects", "string[]?", "what it reads, for tcpcheck show"),
        ("needs_target", "boolean?", "without --target the check skips and says how to give one"),
        ("needs", "(string|string[])?", "the checks whose facts it reads with ctx.fact: they run first"),
        ("timeout", "number?", "deadline in seconds (0.1-600, default 30)"),
        ("memory", "integer?", "memory cap in MiB (1-1024, default 64)"),
        ("options", "{name: string, type?: string, default?: any, help: string}[]?", "the --set KEY=VALUE options it reads: tcpcheck show lists them, and a key no check declares is refused"),
        ("probes", "boolean?", "it sends packets to the target, or takes the snapshot their traces are measured from: it takes its turn after the earlier checks that do"),
        ("run", "fun(ctx: tcpcheck.Ctx): tcpcheck.Result", "the step: reads the system through the host modules and returns its result"),
        ("examples", "tcpcheck.CheckExample[]?", "recorded runs `tcpcheck test` replays, with the status and causes the check must give there"),
        ("finish", "(fun(ctx: tcpcheck.Ctx): tcpcheck.Result?)?", "optional: after the other checks, completes the result of work run() left going; nil keeps run()'s"),
    ]

    public static let names: Set<String> = Set(all.map(\.name))
}
