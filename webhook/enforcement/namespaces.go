package enforcement

import (
	"context"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Namespaces finds the mode of a namespace from a metadata-only cache of the namespaces that
// carry Label (CacheByObject): a namespace not in it has no label, so the global mode.
type Namespaces struct {
	Global Mode
	Cache  client.Reader
	Log    logr.Logger
}

// For is the mode of namespace ("" for cluster-scoped requests: the global mode). A cache
// that cannot answer leaves the global mode, logged.
func (n *Namespaces) For(ctx context.Context, namespace string) Mode {
	if namespace == "" || n.Cache == nil {
		return n.Global
	}
	ns := NamespaceObject()
	if err := n.Cache.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		if !apierrors.IsNotFound(err) {
			n.Log.Error(err, "reading the namespace's enforcement label; the global mode applies", "namespace", namespace, "mode", n.Global)
		}
		return n.Global
	}
	m, _ := Resolve(n.Global, ns.Labels)
	return m
}

// NamespaceObject is the metadata-only object the namespace cache holds.
func NamespaceObject() *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}}
}

// CacheByObject scopes the namespace cache: metadata only (no spec or status is ever
// decoded), only namespaces that carry Label (most carry none, so the cache is usually
// empty; a namespace whose label is removed leaves it), trimmed to its name and that label.
func CacheByObject() (client.Object, cache.ByObject) {
	req, err := labels.NewRequirement(Label, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid key: cannot happen
	}
	return NamespaceObject(), cache.ByObject{Label: labels.NewSelector().Add(*req), Transform: trimNamespace}
}

var trimNamespace toolscache.TransformFunc = func(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}}
	if v, ok := m.Labels[Label]; ok {
		out.Labels = map[string]string{Label: v}
	}
	return out, nil
}

// LogInvalidLabels logs, once per change, each namespace whose label names no mode (the
// global mode applies there); `workspace-webhook doctor` reports them too.
func LogInvalidLabels(log logr.Logger, global Mode) toolscache.ResourceEventHandler {
	note := func(obj any) {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return
		}
		if _, valid := Resolve(global, m.Labels); !valid {
			log.Info("namespace label names no enforcement mode (enforce or warn); the global mode applies",
				"namespace", m.Name, "label", Label, "value", m.Labels[Label], "mode", global)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { note(obj) },
		UpdateFunc: func(old, obj any) {
			if o, ok := old.(*metav1.PartialObjectMetadata); ok {
				if n, ok := obj.(*metav1.PartialObjectMetadata); ok && o.Labels[Label] == n.Labels[Label] {
					return // a resync or another change: said already
				}
			}
			note(obj)
		},
	}
}
