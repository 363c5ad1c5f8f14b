#!/usr/bin/env bash
# Installs what pgAgentOS needs when it is missing, and does nothing when it is there:
#   1. a PostgreSQL server >= 15 (Debian packages),
#   2. pgvector for that server (built from Debian's `pgvector` source package of a newer release,
#      fetched through a private apt source list, so the system's apt configuration is untouched),
#   3. the pgagentos extension files (make install), for CREATE EXTENSION pgagentos,
#   4. the .NET build (only when a source file changed since the last build).
# Works as root (CI) and as a normal user with sudo.
#
# Usage: scripts/setup.sh [--quiet] [--no-build]
#   AOS_PG_MAJOR=16   prefer another PostgreSQL major version (default: the newest installed, else 15)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUIET=0
BUILD=1
for arg in "$@"; do
  case "$arg" in
    --quiet) QUIET=1 ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

say() { [ "$QUIET" = 1 ] || echo "setup: $*" >&2; }
die() { echo "setup: $*" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=(__no_sudo__)
fi
as_root() {
  if [ "${SUDO[0]-}" = __no_sudo__ ]; then
    die "need root to run: $* (run as root, or install sudo)"
  fi
  "${SUDO[@]}" "$@"
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || die "apt-get install $* failed"
}

# ---- 1. PostgreSQL server ------------------------------------------------------------------
find_pg_bindir() {
  local d major best="" bestmajor=0
  if [ -n "${AOS_PG_BIN:-}" ] && [ -x "$AOS_PG_BIN/postgres" ]; then echo "$AOS_PG_BIN"; return; fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] && [ -x "$d/initdb" ] || continue
    major="$(basename "$(dirname "$d")")"
    [[ "$major" =~ ^[0-9]+$ ]] || continue
    [ "$major" -ge 15 ] || continue
    if [ -n "${AOS_PG_MAJOR:-}" ] && [ "$major" = "$AOS_PG_MAJOR" ]; then echo "$d"; return; fi
    if [ "$major" -gt "$bestmajor" ]; then best="$d"; bestmajor="$major"; fi
  done
  echo "$best"
}

PG_BIN="$(find_pg_bindir)"
if [ -z "$PG_BIN" ]; then
  apt_install "postgresql-${AOS_PG_MAJOR:-15}" "postgresql-client-${AOS_PG_MAJOR:-15}"
  PG_BIN="$(find_pg_bindir)"
  [ -n "$PG_BIN" ] || die "PostgreSQL >= 15 is still missing after apt-get install"
fi
PG_MAJOR="$(basename "$(dirname "$PG_BIN")")"
PG_CONFIG="$PG_BIN/pg_config"
[ -x "$PG_CONFIG" ] || PG_CONFIG="$(command -v pg_config || true)"
[ -n "$PG_CONFIG" ] || die "pg_config not found for PostgreSQL $PG_MAJOR"
SHAREDIR="$("$PG_CONFIG" --sharedir)"
say "PostgreSQL $PG_MAJOR at $PG_BIN"

# The cluster may not run as root: make sure an unprivileged OS user exists for it.
if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
  say "creating the system user postgres (PostgreSQL refuses to run as root)"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/sh postgres
fi

# ---- 2. pgvector ----------------------------------------------------------------------------
if [ ! -f "$SHAREDIR/extension/vector.control" ]; then
  say "pgvector is missing for PostgreSQL $PG_MAJOR: building it from Debian's source package"
  need=()
  dpkg -s "postgresql-server-dev-$PG_MAJOR" >/dev/null 2>&1 || need+=("postgresql-server-dev-$PG_MAJOR")
  command -v make >/dev/null 2>&1 || need+=(make)
  command -v gcc >/dev/null 2>&1 || need+=(gcc)
  [ ${#need[@]} = 0 ] || apt_install "${need[@]}"

  CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/pgagentos/pgvector"
  APTDIR="$CACHE/apt"
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial" "$CACHE/src"
  # A private source list and lists directory: nothing under /etc/apt or /var/lib/apt changes.
  cat > "$APTDIR/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
EOF
  APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR" -o "APT::Sandbox::User=root"
            -o "Debug::NoLocking=1")
  apt-get "${APT_OPTS[@]}" update -qq >&2 || die "could not read Debian's source index (private list $APTDIR/sources.list)"
  (cd "$CACHE/src" && apt-get "${APT_OPTS[@]}" source --download-only -qq pgvector >&2) \
    || die "could not download Debian's pgvector source package"
  ORIG="$(ls -t "$CACHE"/src/pgvector_*.orig.tar.* | head -n 1)"
  [ -n "$ORIG" ] || die "pgvector source tarball not found in $CACHE/src"
  BUILD_DIR="$CACHE/build"
  rm -rf "$BUILD_DIR" && mkdir -p "$BUILD_DIR"
  tar -xf "$ORIG" -C "$BUILD_DIR" --strip-components=1
  say "building $(basename "$ORIG") against PostgreSQL $PG_MAJOR"
  make -s -C "$BUILD_DIR" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >&2 || die "pgvector build failed"
  as_root make -s -C "$BUILD_DIR" PG_CONFIG="$PG_CONFIG" install >&2 || die "pgvector install failed"
  [ -f "$SHAREDIR/extension/vector.control" ] || die "pgvector installed, but $SHAREDIR/extension/vector.control is missing"
  say "pgvector installed"
fi

# ---- 3. the pgagentos extension files -------------------------------------------------------
make -s -C "$ROOT" PG_CONFIG="$PG_CONFIG" >/dev/null
EXTVERSION="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$ROOT/pgagentos.control")"
if ! cmp -s "$ROOT/pgagentos--$EXTVERSION.sql" "$SHAREDIR/extension/pgagentos--$EXTVERSION.sql" \
   || ! cmp -s "$ROOT/pgagentos.control" "$SHAREDIR/extension/pgagentos.control"; then
  say "installing the pgagentos extension files into $SHAREDIR/extension"
  as_root make -s -C "$ROOT" PG_CONFIG="$PG_CONFIG" install >/dev/null
fi

# ---- 4. the .NET build ----------------------------------------------------------------------
if [ "$BUILD" = 1 ]; then
  command -v dotnet >/dev/null 2>&1 || die "the .NET 10 SDK is missing: install it (https://dot.net) and run again"
  STAMP="$ROOT/artifacts/.build-stamp"
  HASH="$(cd "$ROOT" && find src tests sql $(ls -d bench 2>/dev/null) -type f \( -name '*.cs' -o -name '*.csproj' -o -name '*.sql' \
            -o -name '*.json' -o -name '*.txt' -o -name '*.js' -o -name '*.html' -o -name '*.css' -o -name MANIFEST \) \
            -not -path '*/bin/*' -not -path '*/obj/*' -print0 2>/dev/null | sort -z | xargs -0 sha1sum \
          | cat - Directory.Build.props Directory.Packages.props global.json pgagentos.control 2>/dev/null | sha1sum | cut -c1-40)"
  if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$HASH" ]; then
    say "building the .NET solution"
    mkdir -p "$ROOT/artifacts"
    if ! (cd "$ROOT" && dotnet build PgAgentOS.slnx -c Release -nologo -v q -clp:ErrorsOnly) > "$ROOT/artifacts/build.log" 2>&1; then
      cat "$ROOT/artifacts/build.log" >&2
      die ".NET build failed (log: artifacts/build.log)"
    fi
    mkdir -p "$(dirname "$STAMP")" && echo "$HASH" > "$STAMP"
  fi
fi

echo "$PG_BIN"
