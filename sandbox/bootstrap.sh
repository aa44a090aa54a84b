#!/bin/sh
# Entry point behind `npm start`, `npm stop`, `npm test` and `npm run bench`.
# Provisions what the project needs and the machine may lack (Node 24 LTS, node_modules),
# idempotently and cached outside the repository, then hands over to TypeScript.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cache=${MIMIR_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mimir-recovery}
mkdir -p "$cache"

# --- Node 24 LTS -----------------------------------------------------------
# The npm package node@24 carries the official binary; install it once into the cache.
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major node)" != 24 ]; then
  nodedir="$cache/node24"
  if [ ! -x "$nodedir/node_modules/node/bin/node" ] || [ "$(node_major "$nodedir/node_modules/node/bin/node")" != 24 ]; then
    echo "mimir: installing Node 24 LTS into $nodedir (the machine has $(node -v 2>/dev/null || echo no node))" >&2
    tmp="$cache/node24.tmp.$$"
    rm -rf "$tmp"
    npm install --prefix "$tmp" --no-save --no-audit --no-fund --loglevel=error node@24 >&2
    rm -rf "$nodedir"
    mv "$tmp" "$nodedir"
  fi
  PATH="$nodedir/node_modules/node/bin:$PATH"
  export PATH
fi

# --- node_modules ---------------------------------------------------------
stamp_want="$(node -p 'process.version')-$(sha256sum package-lock.json | cut -c1-16)"
stamp_file=node_modules/.mimir-stamp
if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$stamp_want" ]; then
  echo "mimir: installing dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$stamp_want" > "$stamp_file"
fi

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  start) exec node --import tsx client/cli.ts sandbox up --worker "$@" ;;
  stop)  exec node --import tsx client/cli.ts sandbox down "$@" ;;
  test)
    node_modules/.bin/tsc --noEmit
    node_modules/.bin/eslint --max-warnings 0 .
    node_modules/.bin/prettier --check --log-level warn .
    if [ $# -eq 0 ]; then set -- "test/**/*.test.ts"; fi
    exec node_modules/.bin/mocha "$@" ;;
  bench)
    name=${1:?usage: npm run bench -- <name>}
    shift
    exec node --import tsx "bench/$name.ts" "$@" ;;
  *) echo "usage: bootstrap.sh start|stop|test|bench" >&2; exit 2 ;;
esac
