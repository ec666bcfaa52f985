package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Summary describes a set of latencies (nearest-rank percentiles).
type Summary struct {
	N                   int
	P50, P90, P99, P999 time.Duration
	Min, Max, Mean      time.Duration
	DurationSeconds     float64 // wall time the samples were taken over (0: unknown)
	Errors              int
	RequestsPerSecond   float64 // N / DurationSeconds
	ErrorExamples       []string
}

// Summarize sorts a copy of d and computes its percentiles. over is the wall time the
// samples were collected in (for the rate); errs and examples are carried along.
func Summarize(d []time.Duration, over time.Duration, errs int, examples []string) Summary {
	s := Summary{N: len(d), DurationSeconds: over.Seconds(), Errors: errs, ErrorExamples: examples}
	if len(d) == 0 {
		return s
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	var sum time.Duration
	for _, x := range sorted {
		sum += x
	}
	s.Min, s.Max, s.Mean = sorted[0], sorted[len(sorted)-1], sum/time.Duration(len(sorted))
	s.P50, s.P90 = Percentile(sorted, 0.50), Percentile(sorted, 0.90)
	s.P99, s.P999 = Percentile(sorted, 0.99), Percentile(sorted, 0.999)
	if over > 0 {
		s.RequestsPerSecond = float64(len(d)) / over.Seconds()
	}
	return s
}

// Percentile is the nearest-rank q-quantile of sorted (ascending).
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Median of xs (0 when empty).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Ms formats d in milliseconds with three decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// Line is one summary on one line, for raw data.
func (s Summary) Line() string {
	return fmt.Sprintf("n=%d over %.1fs: %.0f req/s, p50 %s, p90 %s, p99 %s, p99.9 %s, max %s, mean %s, errors %d",
		s.N, s.DurationSeconds, s.RequestsPerSecond, Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.P999), Ms(s.Max), Ms(s.Mean), s.Errors)
}
