package hub_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind: a
// subscriber's writer, a Disconnect close, a NATS connection or server.
// Run as the client process of the broadcast benchmark, it is that client
// instead (see bench_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(benchClientEnv) != "" {
		os.Exit(runBenchClient())
	}
	code := m.Run()
	stopBenchFixture()
	if code == 0 {
		if err := goleak.Find(
			// Keep-alive connections of http.DefaultClient outlive tests
			// by design.
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
