package bench

import (
	"context"
	"sync"
	"time"
)

// Phase is what one load phase measured: the latency of every successful request, the
// failures (with up to three examples each worker) and the wall time it took.
type Phase struct {
	Latencies []time.Duration
	Errors    int
	Examples  []string
	Wall      time.Duration
}

// Summary of the phase's latencies over its wall time.
func (p Phase) Summary() Summary { return Summarize(p.Latencies, p.Wall, p.Errors, p.Examples) }

// RunPhase is one closed-loop load phase: concurrency workers drive do, each sending its next
// request as soon as the previous one is answered, starting requests until d has passed and
// letting its last one finish (nothing is cut off, so every sample counts). do returns an
// error for a failed or wrong answer.
func RunPhase(ctx context.Context, concurrency int, d time.Duration, do func(ctx context.Context, worker, seq int) error) Phase {
	var (
		mu  sync.Mutex
		out Phase
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
			out.Latencies = append(out.Latencies, lat...)
			out.Errors += nerr
			out.Examples = append(out.Examples, errs...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.Wall = time.Since(start)
	return out
}

// Merge pools phases of one kind.
func Merge(ps []Phase) Phase {
	var out Phase
	for _, p := range ps {
		out.Latencies = append(out.Latencies, p.Latencies...)
		out.Errors += p.Errors
		out.Examples = append(out.Examples, p.Examples...)
		out.Wall += p.Wall
	}
	return out
}

// RunPaced is the open-loop counterpart of RunPhase: requests start at a fixed rate for d,
// whatever the answers' speed, at most maxInFlight at a time. A request's latency counts
// from when it was due, so time spent waiting for a free slot is not hidden.
func RunPaced(ctx context.Context, rate float64, maxInFlight int, d time.Duration, do func(ctx context.Context, worker, seq int) error) Phase {
	var (
		mu  sync.Mutex
		out Phase
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
				out.Errors++
				if len(out.Examples) < 3 {
					out.Examples = append(out.Examples, err.Error())
				}
				return
			}
			out.Latencies = append(out.Latencies, el)
		}()
	}
	wg.Wait()
	out.Wall = time.Since(start)
	return out
}
