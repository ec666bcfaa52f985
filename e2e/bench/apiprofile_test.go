package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// profileAPIServer records kube-apiserver's CPU profile (its /debug/pprof, on by default)
// for d into dir/name while a phase runs, to show where the API server's time goes with and
// without webhooks. The returned function waits for the profile and reports any failure.
func profileAPIServer(ctx context.Context, cfg *rest.Config, d time.Duration, dir, name string) func() error {
	done := make(chan error, 1)
	go func() { done <- fetchProfile(ctx, cfg, d, filepath.Join(dir, name)) }()
	return func() error { return <-done }
}

func fetchProfile(ctx context.Context, cfg *rest.Config, d time.Duration, path string) error {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(cfg.Host, "/"), max(1, int(d.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("kube-apiserver CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("kube-apiserver CPU profile %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
