#!/usr/bin/env bash
# bench/startup.sh: start-up (issue 10). `tcpcheck --version` beside a static
# Swift "hello" that imports Foundation, built here the same way as tcpcheck;
# `tcpcheck list` (loads every built-in check) beside `--version`.
# Targets: --version at most 1.5x the hello; list at most 2x --version.
# For reference, the same hello parsing its command line with
# swift-argument-parser (which tcpcheck uses): the floor of that parser.
# Usage: bench/startup.sh [RUNS]     (TCPCHECK_BIN=path to use another binary)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-50}
. bench/lib.sh
bench_binary startup
bench_work startup
printf 'import Foundation\nprint(ProcessInfo.processInfo.processIdentifier > 0 ? "hello" : "")\n' > "$work/hello.swift"
swiftc -O -static-stdlib "$work/hello.swift" -o "$work/hello"
mkdir -p "$work/aphello/Sources/aphello"
cat > "$work/aphello/Package.swift" <<'SWIFT'
// swift-tools-version: 6.0
import PackageDescription
let package = Package(name: "aphello",
  dependencies: [.package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")],
  targets: [.executableTarget(name: "aphello", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")])])
SWIFT
cat > "$work/aphello/Sources/aphello/main.swift" <<'SWIFT'
import ArgumentParser
import Foundation
struct Hello: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "aphello", version: "0.1.0")
    @Option var name = "world"
    func run() { print("hello \(name) \(ProcessInfo.processInfo.processIdentifier > 0)") }
}
Hello.main()
SWIFT
swift build -c release --static-swift-stdlib --package-path "$work/aphello" >&2
aphello=$(swift build -c release --static-swift-stdlib --package-path "$work/aphello" --show-bin-path)/aphello

hyperfine -N --warmup 5 --runs "$runs" --export-json bench/out/startup.json \
  -n "static hello" "$work/hello" \
  -n "argument-parser hello --version" "$aphello --version" \
  -n "tcpcheck --version" "$bin --version" \
  -n "tcpcheck list" "$bin list" >/dev/null

python3 - bench/out/startup.json <<'PY'
import json, statistics, sys
r = {x["command"]: statistics.median(x["times"]) * 1000 for x in json.load(open(sys.argv[1]))["results"]}
for k, v in r.items(): print(f"{k:32} {v:7.2f} ms median")
a = r["tcpcheck --version"] / r["static hello"]
b = r["tcpcheck list"] / r["tcpcheck --version"]
print(f"--version / hello: {a:4.2f}x (target <= 1.5x): {'OK' if a <= 1.5 else 'OVER'}")
print(f"argument-parser hello / hello: {r['argument-parser hello --version'] / r['static hello']:4.2f}x (the parser's own floor)")
print(f"list / --version:  {b:4.2f}x (target <= 2x):   {'OK' if b <= 2 else 'OVER'}")
PY
