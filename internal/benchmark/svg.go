//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
)

// growthSVG plots the median time of each operation and backend against
// the number of running tasks (log scale), one line each, as a
// self-contained SVG.
func growthSVG(gs []*growth) string {
	const (
		w, h                   = 760, 420
		left, right, top, bott = 60, 190, 30, 50
	)
	pw, ph := float64(w-left-right), float64(h-top-bott)
	var counts []int
	minMS, maxMS := math.Inf(1), 0.0
	for _, g := range gs {
		for _, op := range growthOps {
			for k := range g.counts {
				if m := median(g.ms[op][k]); m > 0 {
					minMS, maxMS = math.Min(minMS, m), math.Max(maxMS, m)
				}
			}
		}
		if len(g.counts) > len(counts) {
			counts = g.counts
		}
	}
	if len(counts) == 0 || maxMS == 0 {
		return ""
	}
	// Times span orders of magnitude (a kill in ms, a list of hundreds of
	// tasks in seconds): both axes are logarithmic.
	yLo, yHi := math.Floor(math.Log10(minMS)), math.Ceil(math.Log10(maxMS))
	if yHi == yLo {
		yHi++
	}
	lo, hi := math.Log10(float64(counts[0])), math.Log10(float64(counts[len(counts)-1]))
	if hi == lo {
		hi = lo + 1
	}
	x := func(n int) float64 { return float64(left) + (math.Log10(float64(n))-lo)/(hi-lo)*pw }
	y := func(v float64) float64 {
		return float64(top) + ph - (math.Log10(math.Max(v, math.Pow(10, yLo)))-yLo)/(yHi-yLo)*ph
	}

	var s strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="18" font-size="14">btl: median time per command vs. running tasks</text>`+"\n", left)
	for e := yLo; e <= yHi; e++ {
		for _, m := range []float64{1, 2, 5} {
			if v := m * math.Pow(10, e); v <= math.Pow(10, yHi) {
				p(`<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, float64(left)+pw, y(v), y(v))
				p(`<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(v)+4, v)
			}
		}
	}
	for _, n := range counts {
		p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.1f" stroke="#ddd"/>`+"\n", x(n), x(n), top, float64(top)+ph)
		p(`<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", x(n), float64(top)+ph+16, n)
	}
	p(`<text x="%.1f" y="%d" text-anchor="middle">running tasks (log scale)</text>`+"\n", float64(left)+pw/2, h-10)
	p(`<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">ms, median (log scale)</text>`+"\n", float64(top)+ph/2)
	colors := map[string]string{"start": "#1f77b4", "replace": "#d62728", "kill": "#2ca02c", "list": "#9467bd"}
	dashes := []string{"", "6 4", "2 3", "10 3 2 3"}
	ly := top + 10
	for gi, g := range gs {
		dash := ""
		if d := dashes[gi%len(dashes)]; d != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, d)
		}
		for _, op := range growthOps {
			var pts []string
			for k, n := range g.counts {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(n), y(median(g.ms[op][k]))))
			}
			p(`<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colors[op], dash, strings.Join(pts, " "))
			for _, pt := range pts {
				xy := strings.Split(pt, ",")
				p(`<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], colors[op])
			}
			lx := w - right + 15
			p(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, lx+28, ly, ly, colors[op], dash)
			p(`<text x="%d" y="%d">%s, %s</text>`+"\n", lx+34, ly+4, op, g.backend)
			ly += 18
		}
		ly += 8
	}
	p("</svg>\n")
	return s.String()
}
