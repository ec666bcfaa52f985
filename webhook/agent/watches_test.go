package agent

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI answers every watch with a stream the test writes to, and anything else with 200
// and an empty body; a watch of a path in fail gets a 500.
type fakeAPI struct {
	mu      sync.Mutex
	streams []*io.PipeWriter
	fail    map[string]bool
}

func (f *fakeAPI) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.URL.Query().Get("watch") != "true" {
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("{}"))}, nil
	}
	if f.fail[req.URL.Path] {
		return &http.Response{StatusCode: http.StatusInternalServerError, Body: io.NopCloser(strings.NewReader("{}"))}, nil
	}
	r, w := io.Pipe()
	f.streams = append(f.streams, w)
	return &http.Response{StatusCode: http.StatusOK, Body: r}, nil
}

// watchClient is what a reflector does: it opens a watch and reads it until it ends.
type watchClient struct {
	t  *testing.T
	rt http.RoundTripper
}

func (c watchClient) watch(url string) (done chan struct{}) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		c.t.Fatal(err)
	}
	done = make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	return done
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func newTestWatches() (*Watches, *clock, *fakeAPI) {
	c := &clock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	w := NewWatches()
	w.now = c.Now
	return w, c, &fakeAPI{fail: map[string]bool{}}
}

func wantFresh(t *testing.T, w *Watches, want bool, mention string) {
	t.Helper()
	fresh, why := w.Fresh()
	if fresh != want {
		t.Fatalf("Fresh() = %v (%s), want %v", fresh, why, want)
	}
	if mention != "" && !strings.Contains(why, mention) {
		t.Fatalf("Fresh() says %q, want it to name %q", why, mention)
	}
}

// eventually waits for a stream's end to reach the tracker (the reader goroutine).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWatchesFollowStreams(t *testing.T) {
	w, clk, api := newTestWatches()
	c := watchClient{t, w.Wrap(api)}
	wantFresh(t, w, true, "") // nothing watched yet: the caches have not started

	// Lists and gets are not watches.
	req, _ := http.NewRequest(http.MethodGet, "https://api/api/v1/pods?labelSelector=a%3Db", nil)
	if _, err := c.rt.RoundTrip(req); err != nil {
		t.Fatal(err)
	}
	wantFresh(t, w, true, "")

	pods := c.watch("https://api/api/v1/pods?labelSelector=agent.octopus.com%2Fcomponent%3Dtentacle&watch=true&resourceVersion=10")
	nodes := c.watch("https://api/api/v1/nodes?watch=true&resourceVersion=10")
	wantFresh(t, w, false, "settling") // replayed events may still be on their way
	clk.Advance(DefaultSettle)
	wantFresh(t, w, true, "")

	// The connection drops: the pod watch ends.
	api.streams[0].CloseWithError(io.ErrUnexpectedEOF)
	<-pods
	wantFresh(t, w, false, "/api/v1/pods?labelSelector=agent.octopus.com/component=tentacle")
	if w.Down() != 1 {
		t.Fatalf("Down() = %d, want 1", w.Down())
	}

	// A watch that the API server refuses is not a live one.
	api.fail["/api/v1/pods"] = true
	c.watch("https://api/api/v1/pods?labelSelector=agent.octopus.com%2Fcomponent%3Dtentacle&watch=true")
	wantFresh(t, w, false, "/api/v1/pods")

	// Reconnected: fresh again once settled.
	api.fail["/api/v1/pods"] = false
	c.watch("https://api/api/v1/pods?labelSelector=agent.octopus.com%2Fcomponent%3Dtentacle&watch=true&resourceVersion=12")
	wantFresh(t, w, false, "settling")
	clk.Advance(DefaultSettle)
	wantFresh(t, w, true, "")

	// A second selector on the same path is a resource of its own.
	c.watch("https://api/api/v1/pods?labelSelector=app.kubernetes.io%2Fname%3Doctopus-agent&watch=true")
	wantFresh(t, w, false, "settling")
	clk.Advance(DefaultSettle)
	wantFresh(t, w, true, "")

	api.streams[1].Close() // the node watch ends cleanly (its timeout): down until re-watched
	<-nodes
	wantFresh(t, w, false, "/api/v1/nodes")
}

// A watch-list stream (sendInitialEvents=true) is live only once its initial events have
// arrived: the bookmark annotated k8s.io/initial-events-end, here split across two writes.
func TestWatchesWaitForInitialEvents(t *testing.T) {
	w, clk, api := newTestWatches()
	c := watchClient{t, w.Wrap(api)}
	done := c.watch("https://api/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
	clk.Advance(time.Minute)
	wantFresh(t, w, false, "/api/v1/nodes")
	go func() {
		_, _ = api.streams[0].Write([]byte(`{"type":"ADDED","object":{"kind":"Node"}}` + "\n"))
		_, _ = api.streams[0].Write([]byte(`{"type":"BOOKMARK","object":{"metadata":{"annotations":{"k8s.io/initial-ev`))
		_, _ = api.streams[0].Write([]byte(`ents-end":"true"}}}}` + "\n"))
	}()
	waitFor(t, func() bool { _, why := w.Fresh(); return strings.Contains(why, "settling") })
	clk.Advance(DefaultSettle)
	wantFresh(t, w, true, "")
	api.streams[0].Close()
	<-done
	wantFresh(t, w, false, "/api/v1/nodes")
}

// OnChange hears each change of Fresh, the end of a settling period included.
func TestWatchesReportChanges(t *testing.T) {
	w := NewWatches()
	w.Settle = 20 * time.Millisecond
	api := &fakeAPI{fail: map[string]bool{}}
	var mu sync.Mutex
	var changes []bool
	w.OnChange = func(fresh bool, _ []string) { mu.Lock(); changes = append(changes, fresh); mu.Unlock() }
	c := watchClient{t, w.Wrap(api)}
	done := c.watch("https://api/api/v1/nodes?watch=true")
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) == 2 })
	api.streams[0].Close()
	<-done
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(changes) == 3 })
	mu.Lock()
	defer mu.Unlock()
	if changes[0] || !changes[1] || changes[2] {
		t.Fatalf("changes %v, want [false (settling) true (settled) false (ended)]", changes)
	}
}
