package main

import (
	"strings"
	"testing"
)

func TestQuantile(t *testing.T) {
	xs := []float64{4, 1, 3, 2, 5}
	for _, c := range []struct{ q, want float64 }{{0, 1}, {0.25, 2}, {0.5, 3}, {0.75, 4}, {1, 5}} {
		if got := quantile(xs, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := quantile([]float64{1, 2}, 0.25); got != 1.25 {
		t.Errorf("interpolated quantile = %v, want 1.25", got)
	}
}

// TestRoundRatios pairs turns by round, not by position: the runs are
// listed in different orders and one round is missing from b.
func TestRoundRatios(t *testing.T) {
	a := []run{{round: 0, value: 10}, {round: 1, value: 30}, {round: 2, value: 50}}
	b := []run{{round: 1, value: 15}, {round: 0, value: 5}}
	got := roundRatios(a, b)
	if len(got) != 2 || got[0] != 2 || got[1] != 2 {
		t.Fatalf("roundRatios = %v, want [2 2]", got)
	}
}

// TestWritePaired: the paired ratio follows the rounds even where the
// medians say otherwise. wsrpc is 1.1× gws in every round while the
// rounds themselves drift 3×; the best peer is gws by median.
func TestWritePaired(t *testing.T) {
	runs := map[string]map[string][]run{"rr-64-16": {}}
	for r, speed := range []float64{1, 3, 2, 1.5} {
		add := func(lib string, v float64) {
			runs["rr-64-16"][lib] = append(runs["rr-64-16"][lib], run{round: r, value: v * speed})
		}
		add("wsrpc", 110)
		add("gws", 100)
		add("gorilla", 90)
		add("tcp", 100)
		add(twin, 100)
	}
	var sb strings.Builder
	writePaired(&sb, runs)
	want := "| req/resp 64 conns 16 B | 1.10 (1.10–1.10) gws | 1.10 (1.10–1.10) | 1.00 (1.00–1.00) |\n"
	if !strings.Contains(sb.String(), want) || strings.Contains(sb.String(), busyLib) {
		t.Fatalf("writePaired wrote\n%s\nwant a row\n%s", sb.String(), want)
	}

	// With wsrpc-busy in the run, a column of its own, against the
	// best peer of the judged servers (it is never one).
	for r, speed := range []float64{1, 3, 2, 1.5} {
		runs["rr-64-16"][busyLib] = append(runs["rr-64-16"][busyLib], run{round: r, value: 130 * speed})
	}
	sb.Reset()
	writePaired(&sb, runs)
	for _, want := range []string{
		"| scenario | wsrpc ÷ best peer | wsrpc ÷ tcp | tcp-twin ÷ tcp (A/A) | wsrpc-busy ÷ best peer |\n|---|---:|---:|---:|---:|\n",
		"| req/resp 64 conns 16 B | 1.10 (1.10–1.10) gws | 1.10 (1.10–1.10) | 1.00 (1.00–1.00) | 1.30 (1.30–1.30) gws |\n",
	} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("writePaired wrote\n%s\nwant\n%s", sb.String(), want)
		}
	}
}

// TestNothingJudgedIsNotMet: rows of a cell the report does not know (a
// misspelt CELLS entry, which bench/run.sh measured anyway) are named,
// and a run with no known cell does not read "All targets met".
func TestNothingJudgedIsNotMet(t *testing.T) {
	runs := map[string]map[string][]run{"rr-64-1K": {}}
	for _, lib := range []string{"wsrpc", "gws", "tcp"} {
		runs["rr-64-1K"][lib] = []run{{round: 0, value: 100}}
	}
	var sb strings.Builder
	write(&sb, []string{"wsrpc", "gws", "tcp"}, runs)
	out := sb.String()
	if strings.Contains(out, "All targets met") || !strings.Contains(out, "No target judged") ||
		!strings.Contains(out, "no such scenario: rr-64-1K") {
		t.Fatalf("report of an unknown cell:\n%s", out)
	}
}

// TestDeflateTargetNeedsTakeover: the compressed target is set with
// context takeover; wsrpc without it (cell marked "no ctx") has not met
// it, however few bytes it sent.
func TestDeflateTargetNeedsTakeover(t *testing.T) {
	for _, takeover := range []bool{true, false} {
		runs := map[string]map[string][]run{"deflate-64-1k": {
			"wsrpc": {{round: 0, value: 300, wire: 0.25, takeover: takeover}},
			"coder": {{round: 0, value: 100, wire: 0.38, takeover: true}},
			"tcp":   {{round: 0, value: 400, wire: 0.30, takeover: true}},
		}}
		var sb strings.Builder
		write(&sb, []string{"wsrpc", "coder", "tcp"}, runs)
		met := strings.Contains(sb.String(), "| **yes** |")
		if met != takeover {
			t.Errorf("takeover %v: met %v, want %v\n%s", takeover, met, takeover, sb.String())
		}
	}
}
