// Every host module a check can use. Add a module here to make it visible.
extension HostModule {
    public static var all: [HostModule] {
        [
            .net,
            .tools,
            .sockets,
            .logs,
            .route,
            .dns,
            .proxy,
            .sys,
            .firewall,
            .capture,
            // MODULES: one line per module, keep this comment last.
        ]
    }
}
