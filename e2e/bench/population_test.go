package bench

import (
	"context"
	"fmt"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// populate fills the cluster: agents first, then the unrelated objects.
func populate(ctx context.Context, c client.Client, agents, pods, claims int) error {
	for i := range UnrelatedNamespaces {
		if err := c.Create(ctx, Namespace(UnrelatedNamespace(i))); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := seedAgent(ctx, c, populationAgent(i), fmt.Sprintf("node-%d", i%3+1)); err != nil {
				mu.Lock()
				first = firstErr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	for _, step := range []struct {
		n    int
		make func(int) client.Object
	}{{pods, func(i int) client.Object { return UnrelatedPod(i) }}, {claims, UnrelatedVolume}, {claims, UnrelatedClaim}, {claims, UnrelatedAttachment}} {
		if err := CreateAll(ctx, c, step.n, 16, step.make); err != nil {
			return err
		}
	}
	return nil
}
