// For a caller that runs many times from one configuration (tcpcheck serve):
// read the check and rule folders once when it starts, so that a bad folder
// is refused then, with the run's own words, and not on the first run.
extension RunConfig {
    /// Every check this configuration can run; throws UsageError for a bad check or rule folder.
    public func loadCatalog() throws -> CheckCatalog {
        _ = try VerdictRules.sources(ruleDirs: ruleDirs, environment: environment)
        return try CheckCatalog.load(checkDirs: checkDirs, environment: environment, limits: limits, options: options)
    }
}
