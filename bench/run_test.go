package bench_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesUnknownCell: a misspelt cell stops run.sh before it builds
// or measures anything. It used to be measured as a 1-connection 16 B
// echo under its own name (cell_args's failure inside a here-string does
// not trip set -e), which the report then left out of every table. The
// script runs with a PATH that has no go on it, so a script that went on
// to build fails there and touches no results.
func TestRunRefusesUnknownCell(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	for _, tool := range []string{"dirname", "mktemp", "rm"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("no %s", tool)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bash, "run.sh")
	cmd.Env = []string{"PATH=" + bin, "CELLS=rr-64-1k rr-64-1K", "LIBS=tcp", "QUICK=1"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || strings.TrimSpace(string(out)) != "unknown cell rr-64-1K" {
		t.Fatalf("run.sh with a misspelt cell: %v, output:\n%s", err, out)
	}
}
