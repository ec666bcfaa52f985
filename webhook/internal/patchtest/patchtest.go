// Package patchtest checks an admission patch the way the API server takes it, for the
// tests and fuzz targets of the webhook's decisions and handlers: applied with the JSON
// patch library of the API server's mutating admission (gopkg.in/evanphx/json-patch.v4, to
// the object as the API server encodes it), the result decoded as a Pod with the API
// server's JSON rules, and nothing of the object lost.
package patchtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
)

// Canonical is obj as the API server hands it to a patch: its typed encoding.
func Canonical(pod *corev1.Pod) []byte {
	b, err := json.Marshal(pod)
	if err != nil {
		panic(err) // a typed Pod always marshals
	}
	return b
}

// DecodePod decodes raw as the API server decodes a request body: case-sensitive, integers
// preserved. It is the precondition of every patch check: the API server never sends an
// object it could not decode.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	var pod corev1.Pod
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &pod); err != nil {
		return nil, err
	}
	return &pod, nil
}

// Apply applies patch (a JSON patch document) to obj as the API server's mutating admission
// does, requires every operation to be an "add", and decodes the result strictly as a Pod: a
// field our patch misspelled or duplicated is an error here, where the API server would drop
// it silently.
func Apply(obj, patch []byte) ([]byte, *corev1.Pod, error) {
	ops, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, nil, fmt.Errorf("undecodable patch: %w", err)
	}
	for _, op := range ops {
		if k := op.Kind(); k != "add" {
			p, _ := op.Path()
			return nil, nil, fmt.Errorf("%q operation at %s: patches must be add-only", k, p)
		}
	}
	out, err := ops.Apply(obj)
	if err != nil {
		return nil, nil, fmt.Errorf("patch does not apply: %w\nobject %s\npatch %s", err, obj, patch)
	}
	var pod corev1.Pod
	strict, err := sigsjson.UnmarshalStrict(out, &pod)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("patched object is not a Pod: %w\n%s", err, out)
	}
	return out, &pod, nil
}

// Keeps returns nil when everything in orig is still in got: objects keep every key, arrays
// keep every element at its index (new ones only appended), scalars are equal. Paths in
// replaced (JSON pointers) may have changed: an "add" onto an existing member replaces it,
// which the webhook does only for its own record annotation.
func Keeps(orig, got []byte, replaced ...string) error {
	var a, b any
	if err := json.Unmarshal(orig, &a); err != nil {
		return err
	}
	if err := json.Unmarshal(got, &b); err != nil {
		return err
	}
	skip := map[string]bool{}
	for _, p := range replaced {
		skip[p] = true
	}
	return keeps(a, b, "", skip)
}

func keeps(a, b any, path string, skip map[string]bool) error {
	if skip[path] {
		return nil
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: object became %T", orDoc(path), b)
		}
		for k, v := range av {
			w, ok := bv[k]
			if !ok {
				return fmt.Errorf("%s/%s: removed", path, escape(k))
			}
			if err := keeps(v, w, path+"/"+escape(k), skip); err != nil {
				return err
			}
		}
		return nil
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) < len(av) {
			return fmt.Errorf("%s: array of %d became %v", orDoc(path), len(av), describe(b))
		}
		for i := range av {
			if err := keeps(av[i], bv[i], path+"/"+strconv.Itoa(i), skip); err != nil {
				return err
			}
		}
		return nil
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Errorf("%s: %v became %v", orDoc(path), a, b)
	}
	return nil
}

// Pointer is the JSON pointer of a map key under prefix.
func Pointer(prefix, key string) string { return prefix + "/" + escape(key) }

func escape(k string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(k) }

func orDoc(p string) string {
	if p == "" {
		return "the document"
	}
	return p
}

func describe(v any) string {
	if arr, ok := v.([]any); ok {
		return fmt.Sprintf("an array of %d", len(arr))
	}
	return fmt.Sprintf("%T", v)
}
