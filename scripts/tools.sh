# Sourced by the other scripts: pinned tools, installed on first use.
# Nothing here is installed by hand; a fresh machine gets the same versions.

BUF_VERSION=v1.57.2 # the newest buf does not resolve through the module proxy here

export GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
export PATH="$GOBIN:$PATH"

ensure_buf() {
	if ! command -v buf >/dev/null 2>&1 || [ "$(buf --version 2>/dev/null)" != "${BUF_VERSION#v}" ]; then
		echo "installing buf $BUF_VERSION"
		go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
	fi
}

# ensure_node_peers installs the npm peers (ws, eventsource) used by interop tests.
ensure_node_peers() {
	if ! command -v node >/dev/null 2>&1; then
		echo "node is required for interop tests" >&2
		return 1
	fi
	(cd internal/interop/node && npm ci --no-audit --no-fund --loglevel=error)
}

# ensure_chromium installs Debian's chromium for the browser tests.
ensure_chromium() {
	if command -v chromium >/dev/null 2>&1; then
		return 0
	fi
	echo "installing chromium"
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	fi
}
