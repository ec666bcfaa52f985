package agent

import (
	"context"
	"fmt"
	"reflect"

	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SharedReads is a client.Reader that lets identical live reads in flight at the same time
// share one request to the API server. In a burst, the script pods of one agent arrive
// together and each needs the same list of its Tentacle pods (a v1/v2 agent installed with
// nameOverride is in no cache) or the same claim (one no cache holds); while a watch is down,
// every read is live. On a loaded API server those reads are what times out, and n identical
// ones queued behind each other are n times the load. A caller that joins a read in flight
// gets a copy of an answer requested at most one round trip before its own request came.
type SharedReads struct {
	Reader client.Reader
	group  singleflight.Group
}

// Get shares a GET of the same kind, key and options.
func (s *SharedReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	o := &client.GetOptions{}
	o.ApplyOptions(opts)
	id := fmt.Sprintf("get %T %s %+v", obj, key, o.AsGetOptions())
	return s.do(ctx, id, obj, func(ctx context.Context, into runtime.Object) error {
		return s.Reader.Get(ctx, key, into.(client.Object), opts...)
	})
}

// List shares a LIST of the same kind, namespace, selectors and page.
func (s *SharedReads) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := &client.ListOptions{}
	o.ApplyOptions(opts)
	id := fmt.Sprintf("list %T ns=%q labels=%v fields=%v limit=%d continue=%q", list, o.Namespace, o.LabelSelector, o.FieldSelector, o.Limit, o.Continue)
	return s.do(ctx, id, list, func(ctx context.Context, into runtime.Object) error {
		return s.Reader.List(ctx, into.(client.ObjectList), opts...)
	})
}

// do runs read once for all callers with the same id in flight. No one caller's cancellation
// stops the shared read, only the first caller's deadline bounds it; each caller stops waiting
// when its own context ends, and gets its own deep copy of the answer.
func (s *SharedReads) do(ctx context.Context, id string, out runtime.Object, read func(context.Context, runtime.Object) error) error {
	ch := s.group.DoChan(id, func() (any, error) {
		shared := context.WithoutCancel(ctx)
		if deadline, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			shared, cancel = context.WithDeadline(shared, deadline)
			defer cancel()
		}
		into := reflect.New(reflect.TypeOf(out).Elem()).Interface().(runtime.Object) // an empty object of out's type
		if err := read(shared, into); err != nil {
			return nil, err
		}
		return into, nil
	})
	select {
	case <-ctx.Done():
		return ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return r.Err
		}
		// Each caller owns its copy: the answer is shared by every caller of this flight.
		reflect.ValueOf(out).Elem().Set(reflect.ValueOf(r.Val.(runtime.Object).DeepCopyObject()).Elem())
		return nil
	}
}

var _ client.Reader = (*SharedReads)(nil)
