// The Debian package as an operator gets it: packaging/build-deb.sh builds
// it, and it is installed into a throwaway root with `dpkg --root` (never into
// this machine's /), run there, read, and purged.
//
// XCTest, not Swift Testing: `swift test` runs the XCTest cases before the
// Swift Testing suites rather than beside them, so this release build (a few
// minutes on 2 cores) does not starve the timing-sensitive tests of the CPU.
import Foundation
import XCTest

final class DebianPackageTests: XCTestCase {
    enum Built {
        case deb(String)
        case skipped(String)
        case failed(String)
    }

    /// The package, built once for all the tests of the class.
    nonisolated(unsafe) static var built: Built?

    /// The package's path; skips without root or dpkg-dev, fails if it did not build.
    func package() throws -> String {
        if Self.built == nil { Self.built = Self.build() }
        switch Self.built! {
        case .deb(let deb): return deb
        case .skipped(let reason): throw XCTSkip(reason)
        case .failed(let log): throw BuildFailed(description: log)
        }
    }

    struct BuildFailed: Error, CustomStringConvertible { var description: String }

    static func build() -> Built {
        guard geteuid() == 0 else { return .skipped("needs root: the package installs root-owned files, and the test hides liblua with a bind mount") }
        for tool in ["dpkg-deb", "dpkg-shlibdeps", "strip"] where !onPath(tool) {
            return .skipped("needs \(tool) (apt-get install dpkg-dev binutils)")
        }
        let out = temporaryDirectory("tcpcheck-deb")
        let log = out + "/build.log"
        let started = Date()
        // It builds in .build-deb, so `swift test` holding .build is no obstacle.
        let r = shell("packaging/build-deb.sh --out '\(out)' >'\(log)' 2>&1", timeout: 1800)
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
        // The script prints the package's path last.
        guard r.status == 0, let deb = lines.last.map(String.init), deb.hasSuffix(".deb") else {
            return .failed("packaging/build-deb.sh failed (exit \(r.status)):\n" + lines.suffix(30).joined(separator: "\n"))
        }
        print("DebianPackageTests: built \(deb) in \(Int(Date().timeIntervalSince(started))) s")
        return .deb(deb)
    }

    override class func tearDown() {
        if case .deb(let deb)? = built { try? FileManager.default.removeItem(atPath: (deb as NSString).deletingLastPathComponent) }
    }

    func testControlFile() throws {
        let deb = try package()
        let control = shell("dpkg-deb -f '\(deb)'").stdout
        XCTAssertTrue(control.contains("Package: tcpcheck\n"), control)
        XCTAssertTrue(control.contains("Architecture: \(shell("dpkg --print-architecture").stdout.trimmed)\n"), control)
        let depends = field("Depends", in: control)
        XCTAssertTrue(depends.contains("libc6"), depends)
        XCTAssertFalse(depends.contains("lua"), "Lua is linked in, so no liblua dependency: \(depends)")
        XCTAssertTrue(field("Recommends", in: control).contains("iproute2"), control)
        let files = shell("dpkg-deb -c '\(deb)'").stdout
        for path in ["./usr/bin/tcpcheck", "./usr/share/man/man1/tcpcheck.1.gz",
                     "./usr/lib/tcpcheck/tcpcheck-serve", "./usr/share/man/man1/tcpcheck-serve.1.gz",
                     "./usr/share/bash-completion/completions/tcpcheck", "./usr/share/zsh/vendor-completions/_tcpcheck",
                     "./usr/share/fish/vendor_completions.d/tcpcheck.fish", "./usr/share/doc/tcpcheck/copyright",
                     "./usr/share/doc/tcpcheck/README.md", "./usr/share/doc/tcpcheck/docs/verdict.md",
                     "./usr/lib/systemd/system/tcpcheck-serve.service", "./usr/share/doc/tcpcheck/examples/tcpcheck-alerts.yml"] {
            XCTAssertTrue(files.contains(" \(path)\n"), "\(path) is not in the package")
        }
    }

    /// The packaged binary loads no liblua: ldd says so, and it runs every
    /// check (Lua) with the system's liblua5.4.so.0 replaced by an empty file
    /// in a private mount namespace.
    func testBinaryRunsWithoutLiblua() throws {
        let deb = try package()
        let dir = temporaryDirectory("tcpcheck-x")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(shell("dpkg-deb -x '\(deb)' '\(dir)'").status, 0)
        let binary = dir + "/usr/bin/tcpcheck"
        let ldd = shell("ldd '\(binary)'")
        XCTAssertEqual(ldd.status, 0, ldd.stderr)
        XCTAssertFalse(ldd.stdout.contains("liblua"), ldd.stdout)
        XCTAssertFalse(ldd.stdout.contains("libswift"), ldd.stdout)

        let liblua = shell("realpath /usr/lib/*/liblua5.4.so.0").stdout.trimmed
        guard !liblua.isEmpty else { throw XCTSkip("no liblua5.4.so.0 on this host to hide") }
        let empty = dir + "/empty"
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: nil))
        let r = shell("""
            unshare --mount --propagation private sh -c '
              mount --bind "$0" "$1" || exit 90
              [ -s "$1" ] && exit 91
              python3 -c "import ctypes; ctypes.CDLL(\\"liblua5.4.so.0\\")" 2>/dev/null && exit 92
              exec "$2" demo' '\(empty)' '\(liblua)' '\(binary)'
            """, timeout: 300)
        XCTAssertNotEqual(r.status, 90, "could not bind-mount over \(liblua): \(r.stderr)")
        XCTAssertNotEqual(r.status, 91, "\(liblua) is still readable in the namespace")
        XCTAssertNotEqual(r.status, 92, "liblua5.4.so.0 still loads in the namespace")
        XCTAssertEqual(r.status, 0, "tcpcheck demo without liblua: \(r.stderr)")
        XCTAssertTrue(r.stdout.contains("not_listening"), "the closed port's verdict: \(r.stdout.suffix(2000))")
    }

    /// dpkg -i into an empty root whose database knows the Depends, then the
    /// binary, the man page and the completions from there, then dpkg --purge
    /// leaves nothing behind.
    func testInstallRunAndPurge() throws {
        let deb = try package()
        let root = temporaryDirectory("tcpcheck-root")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let admin = root + "/var/lib/dpkg"
        for sub in ["info", "updates", "triggers"] {
            try FileManager.default.createDirectory(atPath: admin + "/" + sub, withIntermediateDirectories: true)
        }
        // The host's own entries for the packages the binary needs: dpkg
        // then checks the Depends against real package names and versions.
        let depends = field("Depends", in: shell("dpkg-deb -f '\(deb)'").stdout)
        let names = depends.split(separator: ",").map { $0.split(separator: " ").first.map(String.init) ?? "" }
        let status = shell("dpkg-query -s \(names.joined(separator: " ")) > '\(admin)/status'")
        XCTAssertEqual(status.status, 0, "the host lacks a dependency: \(status.stderr)")

        let install = shell("dpkg --root='\(root)' -i '\(deb)'")
        XCTAssertEqual(install.status, 0, "dpkg -i: \(install.stdout)\(install.stderr)")
        XCTAssertTrue(shell("dpkg --root='\(root)' -s tcpcheck").stdout.contains("Status: install ok installed"))

        let version = shell("'\(root)/usr/bin/tcpcheck' --version")
        XCTAssertEqual(version.status, 0, version.stderr)
        XCTAssertEqual(version.stdout.trimmed, field("Version", in: shell("dpkg-deb -f '\(deb)'").stdout))
        // `tcpcheck serve` finds its program where the package put it.
        let serveHelp = shell("'\(root)/usr/bin/tcpcheck' serve --help")
        XCTAssertEqual(serveHelp.status, 0, serveHelp.stderr)
        XCTAssertTrue(serveHelp.stdout.contains("--allow"), serveHelp.stdout)

        if onPath("man") {
            let man = shell("MANWIDTH=100 man -l '\(root)/usr/share/man/man1/tcpcheck.1.gz'", environment: ["MANPAGER": "cat", "PAGER": "cat"])
            XCTAssertEqual(man.status, 0, man.stderr)
            XCTAssertEqual(man.stderr, "", "man page warnings")
            for text in ["SYNOPSIS", "--target", "ENVIRONMENT", "TCPCHECK_CHECKS_PATH", "EXIT STATUS", "SEE ALSO"] {
                XCTAssertTrue(man.stdout.contains(text), "the man page lacks \(text)")
            }
        } else {
            print("DebianPackageTests: man-db is not installed; the man page was not rendered")
        }

        // bash: what <Tab> offers after "tcpcheck " and after "tcpcheck run --fo".
        let bash = shell("""
            source '\(root)/usr/share/bash-completion/completions/tcpcheck'
            complete -p tcpcheck
            # As bash calls it: the command, the word being completed, the one before.
            offer() {
              COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
              _tcpcheck "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
              echo "${COMPREPLY[*]}"
            }
            offer tcpcheck ''
            offer tcpcheck run --fo
            """, shell: "/bin/bash")
        XCTAssertEqual(bash.status, 0, bash.stderr)
        let offers = bash.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(offers.first?.contains("-F _tcpcheck tcpcheck") ?? false, bash.stdout)
        XCTAssertTrue(offers.dropFirst().first.map { ["run", "list", "show", "demo"].allSatisfy($0.split(separator: " ").map(String.init).contains) } ?? false, bash.stdout)
        XCTAssertEqual(offers.last, "--format", bash.stdout)

        let zshFile = root + "/usr/share/zsh/vendor-completions/_tcpcheck"
        XCTAssertTrue(((try? String(contentsOfFile: zshFile, encoding: .utf8)) ?? "").hasPrefix("#compdef tcpcheck"))
        if onPath("zsh") { XCTAssertEqual(shell("zsh -n '\(zshFile)'").status, 0, "zsh cannot parse \(zshFile)") }
        if onPath("fish") {
            let fish = shell("fish -c \"source '\(root)/usr/share/fish/vendor_completions.d/tcpcheck.fish'; complete -C 'tcpcheck '\"")
            XCTAssertTrue(fish.stdout.contains("run\t"), "fish completes: \(fish.stdout) \(fish.stderr)")
        }

        let purge = shell("dpkg --root='\(root)' --purge tcpcheck")
        XCTAssertEqual(purge.status, 0, "dpkg --purge: \(purge.stdout)\(purge.stderr)")
        let left = shell("cd '\(root)' && find . -mindepth 1 -not -path './var' -not -path './var/lib' -not -path './var/lib/dpkg*'").stdout
        XCTAssertEqual(left, "", "left behind by the purge")
        XCTAssertFalse(shell("dpkg --root='\(root)' -s tcpcheck").stdout.contains("installed"))
    }

    func testLintian() throws {
        let deb = try package()
        guard onPath("lintian") else { throw XCTSkip("lintian is not installed (apt-get install lintian)") }
        // Errors and warnings fail; info tags (the Swift runtime's own
        // strings that look misspelt) do not.
        let r = shell("lintian --fail-on error,warning '\(deb)'", timeout: 600)
        XCTAssertEqual(r.status, 0, "lintian: \(r.stdout)\(r.stderr)")
    }
}

/// The man page says what the code does: its EXIT STATUS lists exactly the
/// codes `tcpcheck --help` names, its ENVIRONMENT every variable the sources
/// read. Needs neither root nor a package.
final class ManPageTests: XCTestCase {
    func testExitStatusAndEnvironmentMatchTheCode() throws {
        let tail = try String(contentsOfFile: repository + "/packaging/man/tcpcheck.1.tail", encoding: .utf8)
        let binary = try XCTUnwrap(["debug", "release"].map { repository + "/.build/\($0)/tcpcheck" }.first(where: FileManager.default.isExecutableFile), "tcpcheck is not built")
        let help = shell("'\(binary)' --help").stdout
        let statusText = try XCTUnwrap(help.range(of: "Exit status:").map { String(help[$0.upperBound...]) }, help)
        let helpCodes = matches(of: #"(?:^|[:,])\s*(\d+)\s+[a-z]"#, in: statusText.components(separatedBy: "\n\n")[0])
        XCTAssertEqual(Set(matches(of: #"(?m)^\.It (\d+)$"#, in: section("EXIT STATUS", of: tail))), Set(helpCodes), "EXIT STATUS against --help")
        XCTAssertTrue(helpCodes.contains("74"), "parsed \(helpCodes) from: \(statusText)")

        let sources = shell("grep -rhoE 'TCPCHECK_[A-Z_]+' --include=*.swift Sources | sort -u").stdout.split(separator: "\n").map(String.init)
        XCTAssertFalse(sources.isEmpty)
        XCTAssertEqual(Set(matches(of: #"\.It Ev (\w+)"#, in: section("ENVIRONMENT", of: tail))), Set(sources + ["NO_COLOR"]))
    }

    func section(_ name: String, of page: String) -> String {
        let start = page.range(of: ".Sh \(name)\n")!.upperBound
        return String(page[start...]).components(separatedBy: "\n.Sh ")[0]
    }

    func matches(of pattern: String, in text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } }
    }
}

/// The repository this test file is in.
let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

struct ShellResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a script in the repository (sh, or the given shell); gives up after timeout seconds.
func shell(_ script: String, shell: String = "/bin/sh", environment: [String: String] = [:], timeout: TimeInterval = 120) -> ShellResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: shell)
    p.arguments = ["-c", script]
    p.currentDirectoryURL = URL(fileURLWithPath: repository)
    p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return ShellResult(status: -1, stdout: "", stderr: "\(shell): \(error)") }
    let timer = DispatchWorkItem { p.terminate() }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
    // Both pipes drained at once, so that neither fills and blocks the script.
    let e = DataBox()
    let g = DispatchGroup()
    g.enter(); DispatchQueue.global().async { e.data = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    let o = out.fileHandleForReading.readDataToEndOfFile()
    g.wait()
    p.waitUntilExit()
    timer.cancel()
    return ShellResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e.data, as: UTF8.self))
}

final class DataBox: @unchecked Sendable { var data = Data() }

func onPath(_ tool: String) -> Bool { shell("command -v \(tool)").status == 0 }

func temporaryDirectory(_ prefix: String) -> String {
    let path = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// One field of a control file ("" when absent).
func field(_ name: String, in control: String) -> String {
    control.split(separator: "\n").first { $0.hasPrefix(name + ": ") }.map { String($0.dropFirst(name.count + 2)) } ?? ""
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
