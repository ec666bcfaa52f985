package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// phase is one closed-loop load phase: concurrency workers, each sending its next request
// as soon as the previous one is answered, until the phase's time is up.
type phase struct {
	latencies []time.Duration
	errors    int
	examples  []string
	wall      time.Duration
}

func (p phase) summary() Summary { return Summarize(p.latencies, p.wall, p.errors, p.examples) }

// runPhase drives do from concurrency workers for d: each worker starts requests until d has
// passed and lets its last one finish (nothing is cut off, so every sample counts). do
// returns an error for a failed or wrong answer.
func runPhase(ctx context.Context, concurrency int, d time.Duration, do func(ctx context.Context, worker, seq int) error) phase {
	var (
		mu  sync.Mutex
		out phase
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var errs []string
			nerr := 0
			for seq := 0; ctx.Err() == nil && time.Now().Before(deadline); seq++ {
				t0 := time.Now()
				err := do(ctx, w, seq)
				el := time.Since(t0)
				if err != nil {
					nerr++
					if len(errs) < 3 {
						errs = append(errs, err.Error())
					}
					continue
				}
				lat = append(lat, el)
			}
			mu.Lock()
			out.latencies = append(out.latencies, lat...)
			out.errors += nerr
			out.examples = append(out.examples, errs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.wall = time.Since(start)
	return out
}

// merge pools phases of one kind.
func merge(ps []phase) phase {
	var out phase
	for _, p := range ps {
		out.latencies = append(out.latencies, p.latencies...)
		out.errors += p.errors
		out.examples = append(out.examples, p.examples...)
		out.wall += p.wall
	}
	return out
}

// reviewClient posts AdmissionReviews over HTTPS as the API server does: HTTP/1.1 keep-alive
// connections (the webhook server does not offer HTTP/2), trusting only the webhook's CA.
type reviewClient struct{ http *http.Client }

func newReviewClient(pool *x509.CertPool, conns int) *reviewClient {
	tr := &http.Transport{
		TLSClientConfig: tlsClientConfig(pool), MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}
	return &reviewClient{http: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (c *reviewClient) close() { c.http.CloseIdleConnections() }

// post sends body to url and checks the answer is HTTP 200 and contains every want.
func (c *reviewClient) post(ctx context.Context, url string, body []byte, want ...[]byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b)
	}
	for _, w := range want {
		if !bytes.Contains(b, w) {
			return fmt.Errorf("answer lacks %s: %.300s", w, b)
		}
	}
	return nil
}

// runPaced is the open-loop counterpart of runPhase: requests start at a fixed rate for d,
// whatever the answers' speed, at most maxInFlight at a time. A request's latency counts
// from when it was due, so time spent waiting for a free slot is not hidden.
func runPaced(ctx context.Context, rate float64, maxInFlight int, d time.Duration, do func(ctx context.Context, worker, seq int) error) phase {
	var (
		mu  sync.Mutex
		out phase
		wg  sync.WaitGroup
	)
	slots := make(chan int, maxInFlight)
	for i := range maxInFlight {
		slots <- i
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for seq := 0; ctx.Err() == nil; seq++ {
		due := start.Add(time.Duration(seq) * interval)
		if !due.Before(start.Add(d)) {
			break
		}
		time.Sleep(time.Until(due))
		var slot int
		select {
		case slot = <-slots:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { slots <- slot; wg.Done() }()
			err := do(ctx, slot, seq)
			el := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.errors++
				if len(out.examples) < 3 {
					out.examples = append(out.examples, err.Error())
				}
				return
			}
			out.latencies = append(out.latencies, el)
		}()
	}
	wg.Wait()
	out.wall = time.Since(start)
	return out
}
