package faults

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// nameServer answers each line it reads with its own name, until the connection ends.
func nameServer(t *testing.T, name string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := fmt.Fprintln(c, name); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), func() { _ = ln.Close() }
}

// ask opens a connection through the proxy, sends a line and returns the answer ("" and the
// error when the connection is refused or dropped).
func ask(addr string) (string, net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", nil, err
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, "who"); err != nil {
		c.Close()
		return "", nil, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return "", nil, err
	}
	return strings.TrimSpace(line), c, nil
}

func newProxy(t *testing.T, retryDial bool) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.SetMode(retryDial, ProbeInterval)
	t.Cleanup(p.Close)
	return p
}

func TestProxyRoundRobin(t *testing.T) {
	p := newProxy(t, false)
	a, stopA := nameServer(t, "a")
	defer stopA()
	b, stopB := nameServer(t, "b")
	defer stopB()
	p.AddBackend(a, "")
	p.AddBackend(b, "")
	got := map[string]int{}
	for range 10 {
		name, c, err := ask(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		got[name]++
	}
	if got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("connections per backend %v, want 5 each", got)
	}
}

// A backend whose dial fails: without RetryDial that connection is refused; with it, the next
// backend takes it.
func TestProxyDeadBackend(t *testing.T) {
	for _, retry := range []bool{false, true} {
		t.Run(fmt.Sprintf("retryDial=%v", retry), func(t *testing.T) {
			p := newProxy(t, retry)
			live, stop := nameServer(t, "live")
			defer stop()
			dead, stopDead := nameServer(t, "dead")
			stopDead()
			p.AddBackend(dead, "")
			p.AddBackend(live, "")
			failed := 0
			for range 6 {
				name, c, err := ask(p.Addr())
				if err != nil {
					failed++
					continue
				}
				c.Close()
				if name != "live" {
					t.Fatalf("answered by %q", name)
				}
			}
			if retry && failed != 0 {
				t.Fatalf("%d connections failed although the live backend could take them", failed)
			}
			if !retry && failed != 3 {
				t.Fatalf("%d connections failed, want 3 (every other one went to the dead backend)", failed)
			}
			// Without a ready URL the dead backend stays in the rotation: with RetryDial every
			// connection meets it once on its way to the live one.
			if want := map[bool]int64{false: 3, true: 6}[retry]; p.DialFailures.Load() != want {
				t.Fatalf("dial failures %d, want %d", p.DialFailures.Load(), want)
			}
		})
	}
}

// A backend with a ready URL takes connections only while it answers 200.
func TestProxyFollowsReadiness(t *testing.T) {
	p := newProxy(t, false)
	a, stopA := nameServer(t, "a")
	defer stopA()
	b, stopB := nameServer(t, "b")
	defer stopB()
	var aReady atomic.Bool
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !aReady.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer probe.Close()
	p.AddBackend(a, probe.URL)
	p.AddBackend(b, "")
	time.Sleep(3 * ProbeInterval)
	for range 4 {
		name, c, err := ask(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if name != "b" {
			t.Fatalf("unready backend a took a connection")
		}
	}
	aReady.Store(true)
	deadline := time.Now().Add(2 * time.Second)
	for p.Ready() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("backend a never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	seen := map[string]bool{}
	for range 4 {
		name, c, err := ask(p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		seen[name] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("backends answering once both are ready: %v", seen)
	}
}

// Cut drops open connections and refuses new ones; Restore lets them through again.
func TestProxyCut(t *testing.T) {
	p := newProxy(t, false)
	a, stop := nameServer(t, "a")
	defer stop()
	p.AddBackend(a, "")
	_, open, err := ask(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	p.Cut()
	_ = open.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(open, "still there?"); err == nil {
		if _, err := bufio.NewReader(open).ReadString('\n'); err == nil {
			t.Fatal("a connection open before Cut still answers")
		}
	}
	if _, c, err := ask(p.Addr()); err == nil {
		c.Close()
		t.Fatal("a new connection was served while cut")
	}
	if p.Refused.Load() == 0 {
		t.Fatal("no refusal counted")
	}
	p.Restore()
	if _, c, err := ask(p.Addr()); err != nil {
		t.Fatalf("after Restore: %v", err)
	} else {
		c.Close()
	}
}

// Pause refuses connections at the kernel (nothing listens); Resume listens again.
func TestProxyPause(t *testing.T) {
	p := newProxy(t, false)
	a, stop := nameServer(t, "a")
	defer stop()
	p.AddBackend(a, "")
	p.Pause()
	_, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("dial while paused: %v, want connection refused", err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, c, err := ask(p.Addr()); err != nil {
		t.Fatalf("after Resume: %v", err)
	} else {
		c.Close()
	}
}
