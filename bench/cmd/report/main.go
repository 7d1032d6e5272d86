// Command report turns bench/run.sh's raw results (one tab-separated line
// per run: cell, lib, round, value, wire ratio, takeover, server CPU and
// its user part per message) into the markdown tables of
// docs/benchmarks.md: medians with min–max, the ratio of wsrpc to the best
// peer and to raw TCP, whether each target of issue 7 is met, and the A/A
// spread (tcp-twin against tcp) that says how much of a difference the
// machine's noise alone makes in that run; then the same ratios taken
// round by round, which leave most of that noise out.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Cells in table order; the unit and the target come with each.
type cell struct {
	name, label string
	lowerBetter bool    // idle memory
	minPeer     float64 // wsrpc / best peer must be ≥ this (≤ for lowerBetter)
	minTCP      float64 // wsrpc / tcp must be ≥ this (0: no target)
	maxWire     float64 // deflate: wire bytes per payload byte
	maxAbs      float64 // idle: bytes per connection
}

var cells = []cell{
	{name: "rr-1-16", label: "req/resp 1 conn 16 B", minPeer: 1.0, minTCP: 0.95},
	{name: "rr-1-1k", label: "req/resp 1 conn 1 KiB", minPeer: 1.0, minTCP: 0.95},
	{name: "rr-1-64k", label: "req/resp 1 conn 64 KiB", minPeer: 1.0, minTCP: 0.95},
	{name: "rr-64-16", label: "req/resp 64 conns 16 B", minPeer: 1.0, minTCP: 0.95},
	{name: "rr-64-1k", label: "req/resp 64 conns 1 KiB", minPeer: 1.0, minTCP: 0.95},
	{name: "rr-64-64k", label: "req/resp 64 conns 64 KiB", minPeer: 1.0, minTCP: 0.95},
	{name: "pipe-64-1k", label: "pipelined 64×16 1 KiB", minPeer: 1.5},
	{name: "deflate-64-1k", label: "compressed 64 conns 1 KiB JSON", minPeer: 1.2, maxWire: 0.32},
	{name: "idle", label: "idle memory per conn, loop in handler", lowerBetter: true, minPeer: 0.7, maxAbs: 4096},
	{name: "idle-handoff", label: "idle memory per conn, handler returns", lowerBetter: true, minPeer: 0.7, maxAbs: 4096},
}

var peers = []string{"gorilla", "coder", "gws", "gobwas", "ws"}

// busyLib is wsrpc's server with busy polling on: shown beside the
// default, never the one the targets judge.
const busyLib = "wsrpc-busy"

// nolingerLib is wsrpc's server with PollerOptions.Linger off, run on
// request to measure lingering.
const nolingerLib = "wsrpc-nolinger"

type run struct {
	round       int
	value, wire float64
	takeover    bool
	cpu         float64 // server CPU µs per message; 0 if not measured
	user        float64 // its user-space part
}

// twin is the second raw TCP server of the A/A check (bench/run.sh).
const twin = "tcp-twin"

func main() {
	libsFlag := flag.String("libs", "wsrpc wsrpc-busy wsrpc-loop gorilla coder gws gobwas ws tcp", "column order")
	flag.Parse()
	libs := strings.Fields(*libsFlag)
	runs := map[string]map[string][]run{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 6 {
			continue
		}
		v, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		w, _ := strconv.ParseFloat(f[4], 64)
		var cpu, user float64
		if len(f) > 6 {
			cpu, _ = strconv.ParseFloat(f[6], 64)
		}
		if len(f) > 7 {
			user, _ = strconv.ParseFloat(f[7], 64)
		}
		round, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if runs[f[0]] == nil {
			runs[f[0]] = map[string][]run{}
		}
		runs[f[0]][f[1]] = append(runs[f[0]][f[1]], run{round, v, w, f[5] == "true", cpu, user})
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	write(os.Stdout, libs, runs)
	writePaired(os.Stdout, runs)
	writeCPU(os.Stdout, libs, runs)
}

// writePaired compares wsrpc with the best peer (by median, as in the
// main table), with tcp, and tcp-twin with tcp, round by round: in a round
// every server ran one turn, seconds apart, so a ratio of two
// turns of one round leaves out most of the machine's drift, which the
// ratio of two medians keeps. The median of those ratios with their
// quartiles says how far apart two servers are, and how surely.
func writePaired(w io.Writer, runs map[string]map[string][]run) {
	var rows []string
	busy := false // a wsrpc-busy column: the same Poller with PollerOptions.BusyPoll
	// A wsrpc ÷ wsrpc-nolinger column, when asked for: what lingering on
	// busy connections does, turn for turn.
	nolinger := false
	for _, byLib := range runs {
		busy = busy || len(byLib[busyLib]) > 0
		nolinger = nolinger || len(byLib[nolingerLib]) > 0
	}
	for _, c := range cells {
		byLib := runs[c.name]
		if c.lowerBetter || len(byLib["wsrpc"]) == 0 {
			continue
		}
		_, bestLib := bestPeer(c, byLib, false)
		cols := []string{c.label}
		pairs := [][2]string{{"wsrpc", bestLib}, {"wsrpc", "tcp"}, {twin, "tcp"}}
		if busy {
			pairs = append(pairs, [2]string{busyLib, bestLib})
		}
		if nolinger {
			pairs = append(pairs, [2]string{"wsrpc", nolingerLib})
		}
		for _, pair := range pairs {
			r := roundRatios(byLib[pair[0]], byLib[pair[1]])
			if len(r) == 0 {
				cols = append(cols, "–")
				continue
			}
			s := fmt.Sprintf("%.2f (%.2f–%.2f)", median(r), quantile(r, 0.25), quantile(r, 0.75))
			if pair[1] == bestLib {
				s += " " + bestLib
			}
			cols = append(cols, s)
		}
		rows = append(rows, "| "+strings.Join(cols, " | ")+" |")
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\nRound by round: the median of the rounds' ratios (quartiles), each ratio of two servers' turns in one round:\n\n")
	head, rule := fmt.Sprintf("| scenario | wsrpc ÷ best peer | wsrpc ÷ tcp | %s ÷ tcp (A/A) |", twin), "|---|---:|---:|---:|"
	if busy {
		head, rule = head+" "+busyLib+" ÷ best peer |", rule+"---:|"
	}
	if nolinger {
		head, rule = head+" wsrpc ÷ "+nolingerLib+" |", rule+"---:|"
	}
	fmt.Fprintf(w, "%s\n%s\n", head, rule)
	for _, r := range rows {
		fmt.Fprintln(w, r)
	}
}

// bestPeer returns the peer with the best median throughput (least
// memory, for idle cells) in cell c; goOnly leaves npm ws out.
func bestPeer(c cell, byLib map[string][]run, goOnly bool) (best float64, bestLib string) {
	for _, p := range peers {
		rs := byLib[p]
		if len(rs) == 0 || goOnly && p == "ws" {
			continue
		}
		if c.maxWire > 0 && !rs[0].takeover {
			continue // the target compares with context takeover
		}
		v := median(values(rs))
		if bestLib == "" || (c.lowerBetter && v < best) || (!c.lowerBetter && v > best) {
			best, bestLib = v, p
		}
	}
	return best, bestLib
}

// roundRatios returns a's value ÷ b's for every round both ran.
func roundRatios(a, b []run) []float64 {
	byRound := map[int]float64{}
	for _, r := range b {
		byRound[r.round] = r.value
	}
	var out []float64
	for _, r := range a {
		if v, ok := byRound[r.round]; ok && v > 0 {
			out = append(out, r.value/v)
		}
	}
	return out
}

// quantile is the q-quantile of xs, interpolated between the two nearest
// ranks.
func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// writeCPU is the server's CPU time per message: the cost of each library
// with the scheduling noise of a shared machine taken out. The user-space
// part beside it is what a library's own code (and the Go runtime) adds;
// the rest is the kernel's, which every server on a socket pays alike.
func writeCPU(w io.Writer, libs []string, runs map[string]map[string][]run) {
	fmt.Fprintf(w, "\nServer CPU time per message in µs, all / user space (from /proc/<pid>/stat over each measured turn, 10 ms ticks; median of the rounds; lower is better; the ratios are of all):\n\n")
	tableHeader(w, libs, "wsrpc ÷ best peer:", "wsrpc ÷ tcp:")
	for _, c := range cells {
		if c.lowerBetter || len(runs[c.name]) == 0 {
			continue
		}
		med := map[string]float64{}
		fmt.Fprintf(w, "| %s |", c.label)
		for _, l := range libs {
			var v, u []float64
			for _, r := range runs[c.name][l] {
				if r.cpu > 0 {
					v = append(v, r.cpu)
					u = append(u, r.user)
				}
			}
			if len(v) == 0 {
				fmt.Fprintf(w, " n/a |")
				continue
			}
			med[l] = median(v)
			fmt.Fprintf(w, " %.1f / %.1f |", med[l], median(u))
		}
		best, bestLib := 0.0, ""
		for _, p := range peers {
			if v, ok := med[p]; ok && (bestLib == "" || v < best) {
				best, bestLib = v, p
			}
		}
		ours, ok := med["wsrpc"]
		if !ok || bestLib == "" {
			fmt.Fprintf(w, " | |\n")
			continue
		}
		tcp := "–"
		if t, ok := med["tcp"]; ok && t > 0 {
			tcp = fmt.Sprintf("%.2f", ours/t)
		}
		fmt.Fprintf(w, " %.2f (%s) | %s |\n", ours/best, bestLib, tcp)
	}
}

// tableHeader writes a table's header: the scenario, a right-aligned
// column per library, then the extra columns (a trailing ":" right-aligns
// one).
func tableHeader(w io.Writer, libs []string, extra ...string) {
	fmt.Fprintf(w, "| scenario |")
	for _, l := range libs {
		fmt.Fprintf(w, " %s |", l)
	}
	for _, e := range extra {
		fmt.Fprintf(w, " %s |", strings.TrimSuffix(e, ":"))
	}
	fmt.Fprintf(w, "\n|---|")
	for range libs {
		fmt.Fprintf(w, "---:|")
	}
	for _, e := range extra {
		if strings.HasSuffix(e, ":") {
			fmt.Fprintf(w, "---:|")
		} else {
			fmt.Fprintf(w, "---|")
		}
	}
	fmt.Fprintf(w, "\n")
}

// median is the middle of xs, the mean of the two middle values for an
// even count.
func median(xs []float64) float64 { return quantile(xs, 0.5) }

func values(rs []run) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.value
	}
	return v
}

func format(c cell, v float64) string {
	if c.lowerBetter {
		return fmt.Sprintf("%.1f KiB", v/1024)
	}
	if v >= 1e5 {
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.1fk", v/1e3)
}

func write(w io.Writer, libs []string, runs map[string]map[string][]run) {
	fmt.Fprintf(w, "Throughput in messages per second (k = 1000; one message = one echo round trip of its payload), idle memory in KiB of server RSS per connection; median (min–max) of the rounds.\n\n")
	tableHeader(w, libs, "wsrpc ÷ best peer:", "wsrpc ÷ tcp:", "target", "met")
	var notes []string
	unjudged, judged := 0, 0
	spread, aaParts := aaSpread(runs)
	for _, c := range cells {
		byLib := runs[c.name]
		if len(byLib) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s |", c.label)
		med := map[string]float64{}
		for _, l := range libs {
			rs := byLib[l]
			if len(rs) == 0 {
				fmt.Fprintf(w, " n/a |")
				continue
			}
			v := values(rs)
			med[l] = median(v)
			s := fmt.Sprintf("%s (%s–%s)", format(c, med[l]), format(c, slices.Min(v)), format(c, slices.Max(v)))
			if c.maxWire > 0 {
				s += fmt.Sprintf("<br>%.3f B/B", median(wires(rs)))
				if !rs[0].takeover {
					s += " no ctx"
				}
			}
			fmt.Fprintf(w, " %s |", s)
		}
		best, bestLib := bestPeer(c, byLib, false)
		bestGo, bestGoLib := bestPeer(c, byLib, true)
		ours, ok := med["wsrpc"]
		if !ok || bestLib == "" {
			fmt.Fprintf(w, " | | | |\n")
			unjudged++
			continue
		}
		judged++
		rPeer := ours / best
		rTCP := 0.0
		if t, ok := med["tcp"]; ok && t > 0 {
			rTCP = ours / t
		}
		met := true
		var target []string
		if c.lowerBetter {
			target = append(target, fmt.Sprintf("≤ %.1f KiB, ≤ %.1f× best peer", c.maxAbs/1024, c.minPeer))
			met = ours <= c.maxAbs && rPeer <= c.minPeer
		} else {
			target = append(target, fmt.Sprintf("≥ %.2g× best peer", c.minPeer))
			met = rPeer >= c.minPeer
			if c.minTCP > 0 {
				target = append(target, fmt.Sprintf("≥ %.2g× tcp", c.minTCP))
				met = met && rTCP >= c.minTCP
			}
			if c.maxWire > 0 {
				// The bytes on the wire are judged with context takeover,
				// as the scenario offers it: a wsrpc server that answered
				// server_no_context_takeover (its cell says "no ctx") did
				// not run the scenario the target is set for.
				target = append(target, fmt.Sprintf("≤ %.2f B/B", c.maxWire))
				met = met && median(wires(byLib["wsrpc"])) <= c.maxWire && byLib["wsrpc"][0].takeover
			}
		}
		verdict := "**yes**"
		if !met {
			verdict = "**no**"
			if c.minTCP > 0 && len(aaParts) > 0 && c.minPeer-rPeer <= spread && c.minTCP-rTCP <= spread {
				verdict += " (within the A/A spread)"
			}
			notes = append(notes, c.label)
		}
		tcp := "–"
		if rTCP > 0 {
			tcp = fmt.Sprintf("%.2f", rTCP)
		}
		ratio := fmt.Sprintf("%.2f (%s)", rPeer, bestLib)
		if bestGoLib != bestLib && bestGo > 0 {
			ratio += fmt.Sprintf("<br>%.2f (%s, best Go)", ours/bestGo, bestGoLib)
		}
		fmt.Fprintf(w, " %s | %s | %s | %s |\n", ratio, tcp, strings.Join(target, ", "), verdict)
	}
	if len(aaParts) > 0 {
		fmt.Fprintf(w, "\nA/A check, two identical raw TCP servers in the same run (%s ÷ tcp): %s. Identical servers differed by up to %.0f%% in this run: a request/response ratio closer to 1 than that is a tie.\n",
			twin, strings.Join(aaParts, ", "), 100*spread)
	}
	// Rows of a cell this report does not know (a misspelt CELLS entry)
	// are in no table: say so, rather than judge the run without them.
	var unknown []string
	for name := range runs {
		if !slices.ContainsFunc(cells, func(c cell) bool { return c.name == name }) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	if len(unknown) > 0 {
		fmt.Fprintf(w, "\nLeft out, no such scenario: %s.\n", strings.Join(unknown, ", "))
	}
	switch {
	case len(notes) > 0:
		fmt.Fprintf(w, "\nTargets missed: %s.\n", strings.Join(notes, "; "))
	case unjudged > 0:
		fmt.Fprintf(w, "\nTargets not judged for %d scenario(s): the run had no peer or no wsrpc there.\n", unjudged)
	case judged == 0:
		fmt.Fprintf(w, "\nNo target judged: the run had none of the scenarios.\n")
	default:
		fmt.Fprintf(w, "\nAll targets met.\n")
	}
}

// aaSpread compares the twin raw TCP servers in every cell both ran: the
// largest relative difference of their medians, and each cell's ratio.
func aaSpread(runs map[string]map[string][]run) (spread float64, parts []string) {
	for _, c := range cells {
		a, b := runs[c.name]["tcp"], runs[c.name][twin]
		if len(a) == 0 || len(b) == 0 {
			continue
		}
		r := median(values(b)) / median(values(a))
		spread = max(spread, math.Abs(1-r), math.Abs(1-1/r))
		parts = append(parts, fmt.Sprintf("%.2f (%s)", r, strings.TrimPrefix(c.label, "req/resp ")))
	}
	return spread, parts
}

func wires(rs []run) []float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = r.wire
	}
	return v
}
