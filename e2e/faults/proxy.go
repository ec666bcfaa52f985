// Package faults holds the fault-injection tests of the webhook (issue 13, "Faults"): the API
// server restarting and the webhook's watches dropping, the Tentacle moving, webhook replicas
// killed under load, the webhook fully down, certificate renewal under load, and missing or
// conflicting facts; each on a real control plane with the webhook as its own process, each
// measured (see main_test.go). This file is the one piece that is not a test: a loopback TCP
// proxy that stands for a Service in front of the webhook replicas and for the network between
// the webhook and the API server.
package faults

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy accepts TCP connections on a loopback address and pipes each one, bytes untouched
// (TLS passes through), to one of its backends, round-robin. As a Service in front of webhook
// replicas, a backend with a ready URL takes connections only while that URL answers 200
// (polled every probe interval, as endpoints follow readiness); a connection to a backend that
// refuses it is refused too, as kube-proxy does until the endpoint is gone, unless the proxy
// retries dials (SetMode): then it goes to the next backend, which is marked not ready until
// its probe says otherwise. As the network between the webhook and the API server, Cut drops
// every open connection (watches included) and refuses new ones until Restore.
type Proxy struct {
	addr string
	ctx  context.Context
	end  context.CancelFunc
	wg   sync.WaitGroup

	mu            sync.Mutex
	ln            net.Listener // nil while paused
	retryDial     bool
	probeInterval time.Duration
	backends      []*backend
	next          int
	cut           bool
	conns         map[net.Conn]struct{}

	// Accepted counts accepted connections; Refused those closed at once (cut, no ready
	// backend, every dial failed); DialFailures the failed dials to a backend.
	Accepted, Refused, DialFailures atomic.Int64
}

type backend struct {
	addr     string
	readyURL string
	ready    atomic.Bool
}

// ProbeInterval is how often a backend's ready URL is polled unless SetMode says otherwise.
const ProbeInterval = 100 * time.Millisecond

// NewProxy listens on addr ("127.0.0.1:0" picks a port); it does not retry dials and probes
// every ProbeInterval.
func NewProxy(addr string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ctx, end := context.WithCancel(context.Background())
	p := &Proxy{addr: ln.Addr().String(), ln: ln, ctx: ctx, end: end, probeInterval: ProbeInterval, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve(ln)
	return p, nil
}

// SetMode sets whether a refused dial is retried on the next backend, and how often backends'
// ready URLs are polled.
func (p *Proxy) SetMode(retryDial bool, probeInterval time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retryDial, p.probeInterval = retryDial, probeInterval
}

func (p *Proxy) mode() (bool, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retryDial, p.probeInterval
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.addr }

// Pause stops listening, so a connection is refused by the kernel (what a Service with no
// endpoint gives), and drops every open connection, until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	p.Cut()
	p.Restore()
}

// Resume listens again on the same address after Pause.
func (p *Proxy) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.ln = ln
	p.wg.Add(1)
	go p.serve(ln)
	return nil
}

// AddBackend adds a backend. With readyURL "" it is always ready; else it is ready once a GET
// of readyURL answers 200, and for as long as it does.
func (p *Proxy) AddBackend(addr, readyURL string) {
	b := &backend{addr: addr, readyURL: readyURL}
	if readyURL == "" {
		b.ready.Store(true)
	} else {
		p.wg.Add(1)
		go p.probe(b)
	}
	p.mu.Lock()
	p.backends = append(p.backends, b)
	p.mu.Unlock()
}

// Ready counts the backends ready now.
func (p *Proxy) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, b := range p.backends {
		if b.ready.Load() {
			n++
		}
	}
	return n
}

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// Restore accepts connections again after Cut.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops listening, closes every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() {
	p.end()
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) serve(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.Accepted.Add(1)
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.handle(c) }()
	}
}

func (p *Proxy) handle(client net.Conn) {
	for tried := 0; ; tried++ {
		b := p.pick()
		if b == nil {
			p.refuse(client)
			return
		}
		d := net.Dialer{Timeout: time.Second}
		server, err := d.DialContext(p.ctx, "tcp", b.addr)
		if err != nil {
			p.DialFailures.Add(1)
			if retry, _ := p.mode(); retry && tried < 8 {
				if b.readyURL != "" {
					b.ready.Store(false) // until its probe says otherwise
				}
				continue
			}
			p.refuse(client)
			return
		}
		if !p.track(client, server) {
			p.refuse(client)
			_ = server.Close()
			return
		}
		pipe(client, server)
		p.untrack(client, server)
		return
	}
}

// pick returns the next ready backend, round-robin, or nil when cut or none is ready.
func (p *Proxy) pick() *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return nil
	}
	for range p.backends {
		b := p.backends[p.next%len(p.backends)]
		p.next++
		if b.ready.Load() {
			return b
		}
	}
	return nil
}

// refuse closes a connection with a reset, as a port nobody listens on answers.
func (p *Proxy) refuse(c net.Conn) {
	p.Refused.Add(1)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// pipe copies both ways until either side ends, then closes both.
func pipe(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	_ = a.Close()
	_ = b.Close()
	<-done
}

// probe keeps b.ready equal to "GET readyURL answers 200", until the proxy closes.
func (p *Proxy) probe(b *backend) {
	defer p.wg.Done()
	c := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(p.ctx, http.MethodGet, b.readyURL, nil)
		ok := false
		if resp, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
		b.ready.Store(ok)
		_, every := p.mode()
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
