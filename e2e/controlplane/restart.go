package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// StopAPIServer stops kube-apiserver the way a restart or an upgrade of it does (SIGTERM, so it
// closes its connections and watches; SIGKILL after stopGrace) and leaves everything else
// running: etcd and its data, the certificates, the scheduler, controller manager and kwok, which
// retry until it is back. StartAPIServer brings it back. Linux only: the command line to restart
// with is read from /proc.
func (cp *ControlPlane) StopAPIServer() error {
	cp.apiMu.Lock()
	defer cp.apiMu.Unlock()
	if cp.apiDown {
		return errors.New("kube-apiserver is already stopped")
	}
	if c := cp.apiChild; c != nil { // running since our last StartAPIServer
		c.stop()
		cp.apiChild, cp.apiDown = nil, true
		return nil
	}
	// Still the process envtest started: its command line is ours to reuse.
	pids := envtestPIDs(cp.Env.ControlPlane.APIServer.CertDir)
	if len(pids) != 1 {
		return fmt.Errorf("found %d kube-apiserver processes started by envtest (want 1; Linux only): %v", len(pids), pids)
	}
	pid := pids[0]
	argv, err := cmdline(pid)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping kube-apiserver (pid %d): %w", pid, err)
	}
	// envtest's goroutine reaps it; wait until it is gone, not only exited.
	deadline := time.Now().Add(stopGrace)
	for pidExists(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(stopGrace)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cp.apiArgv, cp.apiDown = argv, true
	return nil
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, with the same command line
// (port, certificates, etcd, flags), and waits until it answers /readyz. Clients made before
// the stop (Config, Client, AddUser's) keep working.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	c, err := cp.startAPIServer()
	if err != nil {
		return err
	}
	return cp.waitAPIServerReady(ctx, c)
}

func (cp *ControlPlane) startAPIServer() (*child, error) {
	cp.apiMu.Lock()
	defer cp.apiMu.Unlock()
	if !cp.apiDown {
		return nil, errors.New("kube-apiserver is running; StopAPIServer first")
	}
	argv := cp.apiArgv
	logFile, err := os.OpenFile(filepath.Join(cp.LogDir, binAPIServer+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "+ restart: %s\n", strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	c := &child{name: binAPIServer, cmd: cmd, done: make(chan struct{})}
	go func() { c.waitErr = cmd.Wait(); _ = logFile.Close(); close(c.done) }()
	cp.apiChild, cp.apiDown = c, false
	return c, nil
}

// waitAPIServerReady polls /readyz with the admin credentials until it answers 200.
func (cp *ControlPlane) waitAPIServerReady(ctx context.Context, c *child) error {
	hc, err := rest.HTTPClientFor(cp.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := strings.TrimRight(cp.Config.Host, "/") + "/readyz"
	last := "no answer yet"
	for {
		if err := c.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after restart: %w (last: %s)", ctx.Err(), last)
		case <-time.After(pollInterval):
		}
	}
}

// cmdline is a process's argv, from /proc.
func cmdline(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("reading the command line of pid %d: %w", pid, err)
	}
	argv := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("pid %d has an empty command line", pid)
	}
	return argv, nil
}

// pidExists tells whether pid exists, a zombie included (once reaped it is gone).
func pidExists(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}
