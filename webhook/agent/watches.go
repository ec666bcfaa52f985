package agent

import (
	"bytes"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Watches tells whether the informer caches are being kept current, as seen from the HTTP
// transport they share: a watched resource is live while a watch stream of it is open and has
// delivered its initial events (a watch-list stream, sendInitialEvents=true, ends them with a
// bookmark annotated k8s.io/initial-events-end). When the API server restarts or the network
// to it drops, every stream ends at once and client-go reconnects with a growing back-off (up
// to many seconds); a Tentacle that moves meanwhile is not seen, and a pin taken from the
// cache then would send the script pod to a node that no longer holds its volume. While not
// fresh, the Finder reads live instead (Finder.Watches).
//
// It sees only what crosses the transport: a connection that silently stops delivering (a
// black-holed network) counts as open until client-go's HTTP/2 health check closes it
// (about 45 s).
type Watches struct {
	// Settle is how long every watched resource must have been live before the cache counts
	// as fresh: the events a resumed watch replays arrive right after its response headers,
	// and must reach the cache first.
	Settle time.Duration
	// OnChange, when set, is called (outside the lock) each time the answer of Fresh changes
	// between true and false, with the resources not live.
	OnChange func(fresh bool, down []string)

	now        func() time.Time
	mu         sync.Mutex
	resources  map[string]*stream
	settleTick *time.Timer

	notifyMu  sync.Mutex
	lastFresh bool // what OnChange last heard
}

// stream counts one watched resource's open watch streams.
type stream struct {
	open      int       // streams with a 200 response, not yet ended
	pending   int       // of those, watch-list streams whose initial events are still arriving
	liveSince time.Time // when open-pending last went from 0 to positive
}

func (s *stream) live() bool { return s.open-s.pending > 0 }

// DefaultSettle is Watches.Settle unless set.
const DefaultSettle = 250 * time.Millisecond

// NewWatches returns a tracker with DefaultSettle; fresh until a watch has been seen.
func NewWatches() *Watches {
	return &Watches{Settle: DefaultSettle, now: time.Now, resources: map[string]*stream{}, lastFresh: true}
}

// initialEventsEnd is the annotation on the bookmark that ends a watch-list stream's initial
// events; the same bytes in JSON and protobuf.
var initialEventsEnd = []byte("k8s.io/initial-events-end")

// Wrap is a rest.Config WrapTransport: it passes every request through and follows watches.
func (w *Watches) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		q := req.URL.Query()
		if q.Get("watch") != "true" && q.Get("watch") != "1" {
			return rt.RoundTrip(req)
		}
		key := watchKey(req)
		w.seen(key)
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			return resp, err
		}
		initial := q.Get("sendInitialEvents") == "true"
		w.opened(key, initial)
		resp.Body = &watchBody{ReadCloser: resp.Body, w: w, key: key, pending: initial}
		return resp, nil
	})
}

// Fresh tells whether every watched resource has been live for at least Settle; when not, it
// names the resources that are not (or "settling" ones).
func (w *Watches) Fresh() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fresh, down := w.freshLocked()
	return fresh, strings.Join(down, ", ")
}

// Down counts the watched resources with no live watch now.
func (w *Watches) Down() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.resources {
		if !s.live() {
			n++
		}
	}
	return n
}

func (w *Watches) freshLocked() (bool, []string) {
	var down, settling []string
	now := w.now()
	for key, s := range w.resources {
		switch {
		case !s.live():
			down = append(down, key)
		case now.Sub(s.liveSince) < w.Settle:
			settling = append(settling, key+" (reconnected, settling)")
		}
	}
	sort.Strings(down)
	sort.Strings(settling)
	return len(down)+len(settling) == 0, append(down, settling...)
}

func (w *Watches) seen(key string) {
	w.update(func() {
		if w.resources[key] == nil {
			w.resources[key] = &stream{}
		}
	})
}

func (w *Watches) opened(key string, initial bool) {
	w.update(func() {
		s := w.resources[key]
		wasLive := s.live()
		s.open++
		if initial {
			s.pending++
		}
		if !wasLive && s.live() {
			s.liveSince = w.now()
		}
	})
}

func (w *Watches) initialDone(key string) {
	w.update(func() {
		s := w.resources[key]
		wasLive := s.live()
		s.pending--
		if !wasLive && s.live() {
			s.liveSince = w.now()
		}
	})
}

func (w *Watches) closed(key string, pending bool) {
	w.update(func() {
		s := w.resources[key]
		s.open--
		if pending {
			s.pending--
		}
	})
}

// update changes the state under the lock, then reports a change of Fresh, and arms a timer
// for the end of a settling period so that the change to fresh is reported too.
func (w *Watches) update(change func()) {
	w.mu.Lock()
	change()
	fresh, _ := w.freshLocked()
	if !fresh && w.settleTick == nil && w.OnChange != nil {
		w.settleTick = time.AfterFunc(w.Settle, func() {
			w.mu.Lock()
			w.settleTick = nil
			w.mu.Unlock()
			w.update(func() {})
		})
	}
	w.mu.Unlock()
	w.notify()
}

// notify calls OnChange, one call at a time and with the state as it is then, when Fresh
// differs from what it last reported: concurrent updates cannot report out of order.
func (w *Watches) notify() {
	if w.OnChange == nil {
		return
	}
	w.notifyMu.Lock()
	defer w.notifyMu.Unlock()
	w.mu.Lock()
	fresh, down := w.freshLocked()
	w.mu.Unlock()
	if fresh == w.lastFresh {
		return
	}
	w.lastFresh = fresh
	w.OnChange(fresh, down)
}

// watchKey names a watched resource: its path and selectors (the webhook watches pods with
// two label selectors, one informer each).
func watchKey(req *http.Request) string {
	q := req.URL.Query()
	key := req.URL.Path
	if s := q.Get("labelSelector"); s != "" {
		key += "?labelSelector=" + s
	}
	if s := q.Get("fieldSelector"); s != "" {
		key += "?fieldSelector=" + s
	}
	return key
}

// watchBody follows one watch stream: its initial events' end, then its end.
type watchBody struct {
	io.ReadCloser
	w   *Watches
	key string

	mu      sync.Mutex // Close may come from another goroutine than Read
	pending bool       // initial events still arriving
	ended   bool
	tail    []byte // the end of what was read, for a marker split across reads
}

func (b *watchBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	if b.pending && !b.ended && n > 0 {
		seen := make([]byte, 0, len(b.tail)+n)
		seen = append(append(seen, b.tail...), p[:n]...)
		if bytes.Contains(seen, initialEventsEnd) {
			b.pending, b.tail = false, nil
			b.w.initialDone(b.key)
		} else {
			b.tail = seen[len(seen)-min(len(seen), len(initialEventsEnd)-1):]
		}
	}
	b.mu.Unlock()
	if err != nil {
		b.end()
	}
	return n, err
}

func (b *watchBody) Close() error {
	b.end()
	return b.ReadCloser.Close()
}

func (b *watchBody) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ended {
		b.ended = true
		b.w.closed(b.key, b.pending)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
