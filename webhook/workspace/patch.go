package workspace

import (
	"strings"

	"gomodules.xyz/jsonpatch/v2"
)

// Only "add" operations are emitted: a full replacement of the typed pod would strip fields
// newer than our k8s.io/api version, and remove/replace of arrays would race other webhooks.

func add(path string, value any) jsonpatch.Operation {
	return jsonpatch.Operation{Operation: "add", Path: path, Value: value}
}

// appendTo adds item to the array at path, creating the array when it is absent or empty.
func appendTo(path string, length int, item any) jsonpatch.Operation {
	if length == 0 {
		return add(path, []any{item})
	}
	return add(path+"/-", item)
}

// pointerEscaper escapes a map key for use in a JSON pointer (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func escapePointer(key string) string {
	return pointerEscaper.Replace(key)
}
