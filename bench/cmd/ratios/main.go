// Command ratios reads `go test -bench` output (files or stdin) and prints,
// per benchmark, the median of each metric for every client and the
// ratios sdk/nethttp and resty/nethttp, as Markdown tables, with the
// targets checked (see targets): the SDK within 1.05x of net/http in time
// and 1.10x in allocations on loopback Upsert and SendMessage, 1.15x in
// time in memory, 1.10x and 1.5x elsewhere, and faster than resty.
//
// Benchmarks are matched by name with the "client=<name>" element taken
// out: BenchmarkUpsert/client=sdk/mode=serial pairs with
// BenchmarkUpsert/client=nethttp/mode=serial.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

const base = "nethttp"

// targets gives the largest sdk/nethttp ratios allowed for a benchmark,
// in time and in allocations (issue 22 for Upsert and SendMessage).
func targets(bench string) (maxTime, maxAllocs float64) {
	switch {
	case strings.HasPrefix(bench, "InMemory/op=Upsert"), strings.HasPrefix(bench, "InMemory/op=SendMessage"):
		return 1.15, 1.5
	case strings.HasPrefix(bench, "Upsert/"), strings.HasPrefix(bench, "SendMessage/"):
		return 1.05, 1.10
	}
	return 1.10, 1.5
}

var procSuffix = regexp.MustCompile(`-\d+$`)

type key struct{ bench, client, unit string }

func main() {
	flag.Parse()
	samples := map[key][]float64{}
	var benches []string
	read := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
				continue
			}
			name := procSuffix.ReplaceAllString(f[0], "")
			var parts []string
			client := ""
			for _, p := range strings.Split(name, "/") {
				if c, ok := strings.CutPrefix(p, "client="); ok {
					client = c
					continue
				}
				parts = append(parts, p)
			}
			if client == "" {
				continue
			}
			bench := strings.TrimPrefix(strings.Join(parts, "/"), "Benchmark")
			if !slices.Contains(benches, bench) {
				benches = append(benches, bench)
			}
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					break
				}
				k := key{bench, client, f[i+1]}
				samples[k] = append(samples[k], v)
			}
		}
	}
	if flag.NArg() == 0 {
		read(os.Stdin)
	}
	for _, name := range flag.Args() {
		fh, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		read(fh)
		fh.Close()
	}

	median := func(k key) (float64, bool) {
		s := slices.Clone(samples[k])
		if len(s) == 0 {
			return 0, false
		}
		slices.Sort(s)
		if len(s)%2 == 1 {
			return s[len(s)/2], true
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
	}
	for _, unit := range []string{"ns/op", "cpu-ns/op", "B/op", "allocs/op"} {
		fmt.Printf("\n%s (median)\n\n", unit)
		fmt.Printf("| benchmark | nethttp | sdk | resty | sdk/nethttp | resty/nethttp | target |\n")
		fmt.Printf("| --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
		for _, b := range benches {
			nh, ok := median(key{b, base, unit})
			if !ok || nh == 0 {
				continue
			}
			sdk, okS := median(key{b, "sdk", unit})
			rs, okR := median(key{b, "resty", unit})
			cell := func(v float64, ok bool) string {
				if !ok {
					return "–"
				}
				if v >= 100 {
					return strconv.FormatFloat(v, 'f', 0, 64)
				}
				return strconv.FormatFloat(v, 'g', 4, 64)
			}
			ratio := func(v float64, ok bool) string {
				if !ok {
					return "–"
				}
				return fmt.Sprintf("%.2fx", v/nh)
			}
			target := ""
			maxTime, maxAllocs := targets(b)
			switch unit {
			case "ns/op", "cpu-ns/op":
				target = verdict(okS && sdk/nh <= maxTime, fmt.Sprintf("sdk ≤ %.2fx", maxTime))
				if okS && okR {
					target += ", " + verdict(sdk < rs, "sdk < resty")
				}
			case "allocs/op":
				target = verdict(okS && sdk/nh <= maxAllocs, fmt.Sprintf("sdk ≤ %.2fx", maxAllocs))
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", b, cell(nh, true), cell(sdk, okS), cell(rs, okR), ratio(sdk, okS), ratio(rs, okR), target)
		}
	}
}

func verdict(ok bool, what string) string {
	if ok {
		return "met (" + what + ")"
	}
	return "**missed** (" + what + ")"
}
