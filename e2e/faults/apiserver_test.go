package faults

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/bench"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/reliability"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
)

// TestAPIServerRestart: kube-apiserver stops and starts again. While it is down the webhook
// keeps answering (reviews sent straight to it, as a second API server of an HA control plane
// would); the moment it is back the Tentacle moves to another node, and no script pod
// admitted after the move may be pinned to the node it left, whether or not the webhook's
// watches have reconnected yet (client-go retries with a growing back-off).
func TestAPIServerRestart(t *testing.T) {
	logsOnFailure(t)
	ctx := ctxFor(t, 5*time.Minute)
	t.Cleanup(func() {
		if err := cp.StartAPIServer(context.Background()); err == nil {
			t.Log("kube-apiserver was left stopped by a failure; started it again")
		}
		restoreStage(t)
	})
	a := rwoAgent("faults-apiserver-restart", "node-1")
	installBareAgent(t, ctx, a)
	old, err := placeTentacle(ctx, a, "octopus-agent-tentacle-old", "node-1")
	must(t, err)
	waitPinned(t, ctx, a, "node-1")

	outage := size(3*time.Second, 15*time.Second)
	rv := newReviewer()
	must(t, cp.StopAPIServer())
	stoppedAt := time.Now()
	during := newTally()
	var reviews sync.WaitGroup
	for w := range 4 {
		reviews.Add(1)
		go func() {
			defer reviews.Done()
			for i := 0; time.Since(stoppedAt) < outage; i++ {
				during.add(rv.scriptPod(ctx, a, fmt.Sprintf("down%d-%05d", w, i)))
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	reviews.Wait()
	must(t, cp.StartAPIServer(ctx))
	upAt := time.Now()
	down := upAt.Sub(stoppedAt)
	watching := watchesCurrent(ctx, upAt)

	// The Tentacle moves at once: gone from node-1, running on node-3.
	must(t, removeTentacle(ctx, old))
	_, err = placeTentacle(ctx, a, "octopus-agent-tentacle-new", "node-3")
	must(t, err)
	movedAt := time.Now()

	after := newTally()
	stale := 0
	firstFresh := time.Duration(-1)
	deadline := movedAt.Add(size(30*time.Second, 90*time.Second))
	for i, afterFresh := 0, 0; time.Now().Before(deadline) && afterFresh < size(20, 200); i++ {
		o := createScriptPod(ctx, a, fmt.Sprintf("up%05d", i))
		after.add(o)
		switch {
		case o.Kind == kindPinned && o.Node == "node-1":
			stale++
		case o.Kind == kindPinned && o.Node == "node-3":
			if firstFresh < 0 {
				firstFresh = o.End.Sub(movedAt)
			}
			afterFresh++
		}
	}
	resumed := <-watching

	t.Logf("during the outage: %s\n%s", during, during.Examples())
	t.Logf("after the move: %s\n%s", after, after.Examples())
	answered := during.total - during.count(kindWebhookFailed)
	reliability.Save(t, bench.Result{Order: 30, Name: "faults-apiserver-restart", Title: "30. Faults: kube-apiserver restarts while script pods keep arriving",
		Config: fmt.Sprintf("Promise: while the API server is down the webhook still answers every review (a ReadWriteOnce script pod is then refused, retryably, since its facts can be neither read nor trusted), "+
			"and once it is back no script pod is pinned to a node the Tentacle left, whether or not the webhook's watches have reconnected yet (until they have, facts are read live). "+
			"How: kube-apiserver stopped (SIGTERM) for %s while 4 workers send reviews straight to the webhook's address, each 50 ms after its last answer (as a second API server of an HA control plane would); "+
			"the moment it is back, the Tentacle pod is deleted from node-1 and one runs on node-3 (placed directly, no controller in the way), "+
			"then script pods are created through the API server one after the other (dry-run: the webhooks and the policy run, nothing is stored); two webhook replicas behind one address, production binary.", outage),
		Figures: []bench.Figure{
			{Measurement: "API server restart", Figure: "reviews answered by the webhook while the API server was down", Measured: fmt.Sprintf("%d of %d", answered, during.total),
				Target: "all", Met: bench.Met(during.total > 0 && answered == during.total)},
			{Measurement: "API server restart", Figure: "answers while it was down", Measured: during.String()},
			{Measurement: "API server restart", Figure: "script pods pinned to the node the Tentacle left (admitted after the move)", Measured: strconv.Itoa(stale),
				Target: "0", Met: bench.Met(stale == 0)},
			{Measurement: "API server restart", Figure: "outcomes after the move", Measured: after.String()},
			{Measurement: "API server restart", Figure: "first script pod pinned to the new node, after the move", Measured: durationOrNever(firstFresh)},
			{Measurement: "API server restart", Figure: "both replicas' watches current again, after the API server was ready", Measured: durationOrNever(resumed)},
			{Measurement: "API server restart", Figure: "kube-apiserver down (stop to ready again)", Measured: bench.Secs(down)},
		},
		Raw: "during the outage:\n" + during.Examples() + "after the move:\n" + after.Examples()})

	if during.total == 0 || answered != during.total {
		t.Errorf("the webhook answered %d of %d reviews while the API server was down", answered, during.total)
	}
	if n := during.count(kindPinned + " to node-1"); n != 0 {
		t.Errorf("%d ReadWriteOnce script pods were pinned while the webhook could neither watch nor read the API server", n)
	}
	if stale != 0 {
		t.Errorf("%d script pods admitted after the move were pinned to node-1, which the Tentacle had left", stale)
	}
	if firstFresh < 0 {
		t.Errorf("no script pod was pinned to node-3 within %s of the move: %s", size(30*time.Second, 90*time.Second), after)
	}
	if resumed < 0 {
		t.Errorf("the replicas' watches never became current again")
	}
}

// TestWatchDrop: the link between the webhook replicas and the API server is cut (every
// connection dropped, new ones refused) while script pods keep arriving through the API server,
// which still reaches the webhook; during the cut the Tentacle moves to another node. No script
// pod admitted after the move may be pinned to the node it left; ReadWriteMany script pods
// whose claim the webhook caches keep being admitted; every script pod gets an answer from the
// webhook; once the link is back the webhook resynchronises and pins to the new node.
func TestWatchDrop(t *testing.T) {
	logsOnFailure(t)
	ctx := ctxFor(t, 5*time.Minute)
	t.Cleanup(func() { restoreStage(t) })
	a := rwoAgent("faults-watch-drop", "node-1")
	installBareAgent(t, ctx, a)
	old, err := placeTentacle(ctx, a, "octopus-agent-tentacle-old", "node-1")
	must(t, err)
	rwx := rwxAgent(t, ctx, "faults-watch-drop-rwx")
	nfs := tentacle.Agent{Namespace: "faults-watch-drop-nfs", Release: "dropnfs", Generation: 2, Storage: tentacle.StorageNFS}
	installAgent(t, ctx, nfs)
	waitPinned(t, ctx, a, "node-1")

	type sample struct {
		outcome
		agent string
	}
	var (
		mu      sync.Mutex
		samples []sample
	)
	record := func(agent string) func(outcome) {
		return func(o outcome) {
			mu.Lock()
			samples = append(samples, sample{o, agent})
			mu.Unlock()
		}
	}
	stop := make(chan struct{})
	loads := []*sync.WaitGroup{load(ctx, 2, a, "rwo", stop, record("rwo")), load(ctx, 1, rwx, "rwx", stop, record("rwx")), load(ctx, 1, nfs, "nfs", stop, record("nfs"))}

	time.Sleep(time.Second)
	apiLink.Cut()
	cutAt := time.Now()
	time.Sleep(time.Second)
	must(t, removeTentacle(ctx, old))
	_, err = placeTentacle(ctx, a, "octopus-agent-tentacle-new", "node-3")
	must(t, err)
	movedAt := time.Now()
	time.Sleep(size(3*time.Second, 15*time.Second))
	apiLink.Restore()
	restoredAt := time.Now()
	resumed := <-watchesCurrent(ctx, restoredAt)
	time.Sleep(size(time.Second, 5*time.Second))
	close(stop)
	for _, l := range loads {
		l.Wait()
	}

	phases := []struct {
		name     string
		from, to time.Time
	}{
		{"before the cut", time.Time{}, cutAt},
		{"cut, before the move", cutAt, movedAt},
		{"cut, after the move", movedAt, restoredAt},
		{"link restored", restoredAt, time.Now().Add(time.Hour)},
	}
	kinds := []struct{ key, name string }{{"rwo", "ReadWriteOnce"}, {"rwx", "ReadWriteMany (class)"}, {"nfs", "NFS (chart's in-cluster NFS)"}}
	stale, unanswered, rwxFailed := 0, 0, 0
	firstFresh := time.Duration(-1)
	byPhase := map[string]map[string]*tally{}
	for _, s := range samples {
		switch {
		case s.agent == "rwo" && s.Kind == kindPinned && s.Node == "node-1" && s.Start.After(movedAt):
			stale++
		case s.agent == "rwo" && s.Kind == kindPinned && s.Node == "node-3" && s.Start.After(restoredAt) && (firstFresh < 0 || s.End.Sub(restoredAt) < firstFresh):
			firstFresh = s.End.Sub(restoredAt)
		case s.agent == "rwx" && s.Kind != kindShared:
			rwxFailed++
		}
		if s.Kind == kindWebhookFailed {
			unanswered++
		}
		for _, p := range phases {
			if !s.Start.Before(p.from) && s.Start.Before(p.to) {
				if byPhase[p.name] == nil {
					byPhase[p.name] = map[string]*tally{"rwo": newTally(), "rwx": newTally(), "nfs": newTally()}
				}
				byPhase[p.name][s.agent].add(s.outcome)
			}
		}
	}
	figures := []bench.Figure{
		{Measurement: "watch drop", Figure: "ReadWriteOnce script pods pinned to the node the Tentacle left (admitted after the move)", Measured: strconv.Itoa(stale), Target: "0", Met: bench.Met(stale == 0)},
		{Measurement: "watch drop", Figure: "script pods the webhook did not answer (the API server's call failed), whole run", Measured: strconv.Itoa(unanswered), Target: "0", Met: bench.Met(unanswered == 0)},
		{Measurement: "watch drop", Figure: "ReadWriteMany (class) script pods not admitted, whole run", Measured: strconv.Itoa(rwxFailed), Target: "0", Met: bench.Met(rwxFailed == 0)},
	}
	var raw strings.Builder
	for _, p := range phases {
		ts := byPhase[p.name]
		if ts == nil {
			continue
		}
		for _, k := range kinds {
			figures = append(figures, bench.Figure{Measurement: "watch drop", Figure: k.name + " script pods, " + p.name, Measured: ts[k.key].String()})
			if ex := ts[k.key].Examples(); ex != "" {
				fmt.Fprintf(&raw, "%s, %s:\n%s", p.name, k.name, ex)
			}
		}
	}
	figures = append(figures,
		bench.Figure{Measurement: "watch drop", Figure: "first ReadWriteOnce script pod pinned to the new node, after the link was restored", Measured: durationOrNever(firstFresh)},
		bench.Figure{Measurement: "watch drop", Figure: "both replicas' watches current again, after the link was restored", Measured: durationOrNever(resumed)})
	reliability.Save(t, bench.Result{Order: 31, Name: "faults-watch-drop", Title: "31. Faults: the webhook's watches drop (its link to the API server cut) while script pods keep arriving",
		Config: fmt.Sprintf("Promise: while the webhook cannot watch the API server it never pins a script pod on facts that may be stale: it reads them live, and when that fails too a ReadWriteOnce script pod is refused (retryably) "+
			"while a ReadWriteMany one whose claim it caches (the chart's claims) is still admitted; the chart's NFS claim carries no label, is not cached, and its script pods are refused too; every script pod gets the webhook's answer within the API server's timeout; "+
			"once the link is back the webhook resynchronises. How: two webhook replicas (production binary) reach the API server through a loopback proxy that drops every connection and refuses new ones for %s, "+
			"while the API server still calls the webhook; 1 s into the cut the Tentacle pod leaves node-1 and one runs on node-3; 4 workers create script pods (2 ReadWriteOnce, 1 ReadWriteMany class, 1 NFS) through the API server, one after the other (dry-run).",
			restoredAt.Sub(cutAt).Round(100*time.Millisecond)),
		Figures: figures, Raw: raw.String()})

	if stale != 0 {
		t.Errorf("%d ReadWriteOnce script pods admitted after the move were pinned to node-1, which the Tentacle had left", stale)
	}
	if unanswered != 0 {
		t.Errorf("%d script pods got no answer from the webhook", unanswered)
	}
	if rwxFailed != 0 {
		t.Errorf("%d ReadWriteMany script pods were not admitted", rwxFailed)
	}
	for _, k := range kinds {
		if ts := byPhase["link restored"]; ts == nil || ts[k.key].total == 0 {
			t.Errorf("no %s script pod after the link was restored", k.name)
		}
	}
	if ts := byPhase["link restored"]; ts != nil && ts["nfs"].count(kindShared) == 0 {
		t.Errorf("NFS script pods not admitted after the link was restored: %s", ts["nfs"])
	}
	if firstFresh < 0 {
		t.Errorf("no script pod was pinned to node-3 after the link came back")
	}
	if resumed < 0 {
		t.Errorf("the replicas' watches never became current again")
	}
}

// waitPinned waits until a script pod of a is pinned to node (the webhook's caches have the
// Tentacle pod).
func waitPinned(t *testing.T, ctx context.Context, a tentacle.Agent, node string) {
	t.Helper()
	i := 0
	eventually(t, ctx, 30*time.Second, "script pods pinned to "+node, func() (bool, string) {
		i++
		o := createScriptPod(ctx, a, fmt.Sprintf("warm%04d", i))
		return o.Kind == kindPinned && o.Node == node, o.String() + " " + o.Err
	})
}

// watchesCurrent reports how long after since every replica's watches of the API server were
// current again (its gauge workspace_webhook_watch_down back at 0), polling every 50 ms for up
// to 2 minutes; -1 if never.
func watchesCurrent(ctx context.Context, since time.Time) <-chan time.Duration {
	out := make(chan time.Duration, 1)
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			all := true
			for _, r := range hooks.replicas {
				if v, err := gauge(r, "workspace_webhook_watch_down"); err != nil || v != 0 {
					all = false
					break
				}
			}
			if all {
				out <- time.Since(since)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		out <- -1
	}()
	return out
}

// gauge reads an unlabelled series from a replica's metrics.
func gauge(r *replica, name string) (float64, error) {
	if !r.running() {
		return 0, fmt.Errorf("%s is not running", r.name)
	}
	page, err := r.proc.MetricsText()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s has no series %s", r.name, name)
}

func durationOrNever(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return bench.Secs(d)
}
