#!/usr/bin/env bash
# Builds the Debian package of tcpcheck from this repository, in one command:
#
#   packaging/build-deb.sh [--out DIR]
#
# It builds the release binary (Swift runtime and Lua 5.4 linked in, so it
# needs only libc, libstdc++ and libgcc), refuses it if it still needs
# liblua5.4, generates the man page (swift-argument-parser's generate-manual
# plugin, plus packaging/man/tcpcheck.1.tail) and the bash, zsh and fish
# completions from the binary, and packs them with the docs into
# DIR/tcpcheck_VERSION_ARCH.deb (default dist/), printing its path last.
# Needs: a git checkout, Swift 6, liblua5.4-dev, dpkg-dev (dpkg-shlibdeps),
# binutils (strip).
# It builds in .build-deb, not .build: the flags differ from a developer's
# build, and it can run while `swift test` holds .build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
  "") out=$repo/dist ;;
  --out) out=${2:?--out needs a folder} ;;
  *) echo "usage: $0 [--out DIR]" >&2; exit 64 ;;
esac
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$repo"
scratch=.build-deb

# The commit's date, not today's: the same commit gives the same man page.
date=$(git log -1 --format=%cs)

# swift-argument-parser's generate-manual plugin builds the release binary
# (that build is the package's: a separate `swift build` would be planned
# apart from the plugin's, and each would rebuild everything after the
# other) and writes the man page from the binary's parser. `swift package`
# takes -X flags only, hence -Xswiftc -static-stdlib (what
# --static-swift-stdlib does). No $ORIGIN rpath: the installed binary loads
# libraries from the system only. -z now: relocations resolved at start,
# then read-only (hardening).
swift_flags=(--scratch-path "$scratch" -Xswiftc -static-stdlib --disable-local-rpath -Xlinker -z -Xlinker now)
echo "build-deb: building tcpcheck (release) and its man page; the first build takes minutes" >&2
swift package "${swift_flags[@]}" generate-manual --date "$date"
bindir=$(swift build -c release "${swift_flags[@]}" --show-bin-path)
binary=$bindir/tcpcheck
server=$bindir/tcpcheck-serve   # what `tcpcheck serve` starts (Sources/TCPCheckCLI/ServeProgram.swift)
page="$scratch/plugins/GenerateManual/outputs/tcpcheck/tcpcheck.1"
serve_page="$scratch/plugins/GenerateManual/outputs/tcpcheck-serve/tcpcheck-serve.1"
for f in "$page" "$serve_page"; do
  [[ -s "$f" ]] || { echo "build-deb: generate-manual wrote no $f" >&2; exit 1; }
done
for b in "$binary" "$server"; do
  if ldd "$b" | grep -E 'liblua|libswift|libFoundation'; then
    echo "build-deb: $b still loads the libraries above; Lua and the Swift runtime must be linked in" >&2
    exit 1
  fi
done
version=$("$binary" --version)
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/debian/tcpcheck   # where dpkg-shlibdeps expects a package's files
doc=$root/usr/share/doc/tcpcheck
install -d "$root/usr/bin" "$root/usr/lib/tcpcheck" "$root/usr/share/man/man1" "$doc"
install -m 755 "$binary" "$root/usr/bin/tcpcheck"
install -m 755 "$server" "$root/usr/lib/tcpcheck/tcpcheck-serve"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/tcpcheck" "$root/usr/lib/tcpcheck/tcpcheck-serve"

# The man page: the parser's options and commands, then the sections it
# cannot know (ENVIRONMENT, EXIT STATUS, SEE ALSO) in place of its generic
# EXIT STATUS. Blank lines from --help texts become paragraph breaks.
{ awk '/^\.Sh "EXIT STATUS"/ { exit } { print /^$/ ? ".Pp" : $0 }' "$page"
  cat packaging/man/tcpcheck.1.tail; } | gzip -9n > "$root/usr/share/man/man1/tcpcheck.1.gz"
# tcpcheck serve's options are tcpcheck-serve's: their page, as the parser wrote it.
awk '{ print /^$/ ? ".Pp" : $0 }' "$serve_page" | gzip -9n > "$root/usr/share/man/man1/tcpcheck-serve.1.gz"

# Completions, where Debian's bash-completion, zsh and fish look for them.
install -d "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"
# bash's is sourced, never run: no #! line.
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' > "$root/usr/share/bash-completion/completions/tcpcheck"
"$binary" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_tcpcheck"
"$binary" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/tcpcheck.fish"

# The docs keep the repository's layout, so README's links work in
# /usr/share/doc/tcpcheck too.
install -m 644 README.md packaging/copyright "$doc/"
cp -r docs "$doc/docs"
install -D -m 644 checks/README.md "$doc/checks/README.md"
cp -r plugins "$doc/plugins"
# The maintainer: DEBFULLNAME and DEBEMAIL (Debian's convention), else the commit's author.
maintainer="${DEBFULLNAME:-$(git log -1 --format=%an)} <${DEBEMAIL:-$(git log -1 --format=%ae)}>"
commit=$(git rev-parse --short HEAD)
printf 'tcpcheck (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- %s  %s\n' \
  "$version" "$commit" "$maintainer" "$(date -R -d "$date")" | gzip -9n > "$doc/changelog.gz"

# tcpcheck serve's systemd unit, installed but not enabled (it wants the user
# tcpcheck and allow lines in /etc/tcpcheck/serve.conf first: docs/serve.md),
# with its example settings, a Prometheus scrape config and an alert rule.
# Still to come: maintainer scripts (DEBIAN/postinst, postrm) that create and
# remove the user.
install -D -m 644 packaging/tcpcheck-serve.service "$root/usr/lib/systemd/system/tcpcheck-serve.service"
install -D -m 644 -t "$doc/examples" packaging/serve.conf packaging/examples/prometheus.yml packaging/examples/tcpcheck-alerts.yml

# Depends: the shared libraries the binary loads, as dpkg-shlibdeps names
# them (it wants a debian/control to read, hence the stub, and a DEBIAN
# folder in the package's tree).
install -d "$root/DEBIAN"
printf 'Source: tcpcheck\n\nPackage: tcpcheck\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O debian/tcpcheck/usr/bin/tcpcheck debian/tcpcheck/usr/lib/tcpcheck/tcpcheck-serve | sed -n 's/^shlibs:Depends=//p')

chmod -R u=rwX,go=rX "$root"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s/@INSTALLED_SIZE@/$(du -sk --exclude=DEBIAN "$root" | cut -f1)/" -e "s/@DEPENDS@/$depends/" \
    packaging/control > "$root/DEBIAN/control"
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"

deb="$out/tcpcheck_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
