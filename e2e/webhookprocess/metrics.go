package webhookprocess

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Metric reads one series from the process's metrics endpoint, summed over its label sets.
func (p *Process) Metric(name string) (float64, error) {
	all, err := p.MetricsText()
	if err != nil {
		return 0, err
	}
	return SeriesValue(all, name)
}

// MetricsText is the process's metrics page (Prometheus text format).
func (p *Process) MetricsText() (string, error) {
	resp, err := http.Get("http://" + p.Metrics + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	return string(b), nil
}

// Sample is one sample of a series: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Samples are the samples of series name in a Prometheus text page, one per label set.
func Samples(page, name string) ([]Sample, error) {
	var out []Sample
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", line, err)
		}
		s := Sample{Labels: map[string]string{}, Value: v}
		if open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}'); open == len(name) && end > open {
			// Label values here are reason codes, paths and status codes: no commas or quotes inside.
			for _, kv := range strings.Split(line[open+1:end], ",") {
				if k, val, ok := strings.Cut(kv, "="); ok {
					s.Labels[k] = strings.Trim(val, `"`)
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// SeriesValue sums the samples of series name (every label set) in a Prometheus text page.
func SeriesValue(page, name string) (float64, error) {
	samples, err := Samples(page, name)
	if err != nil {
		return 0, err
	}
	if len(samples) == 0 {
		return 0, fmt.Errorf("no series %s", name)
	}
	sum := 0.0
	for _, s := range samples {
		sum += s.Value
	}
	return sum, nil
}
