// Package workspace is the pure decision of the mutating webhook: given a script pod and the
// facts about its agent (workspace claim, node holding the volume), it returns the add-only
// JSON patch that injects the workspace volume and mounts and, for ReadWriteOnce claims, pins
// the pod to the volume's node — or the reason to deny. It performs no I/O.
//
// Where things happen:
//   - mode.go:   which access mode the claim gives the workspace (pin, share, or deny)
//   - volume.go: the workspace volume (reused when the pod already references the claim)
//   - mounts.go: the mount at the workspace path in each container
//   - pin.go:    the required node affinity that pins a pod to the volume's node
//   - record.go: the annotation that records what was done
//   - marks.go:  the plain annotations the final-state check reads (volume, path, node)
//   - mutate.go: the order in which the above are applied
//   - finalstate.go: the check of a final pod from its marks alone, the Go twin of the
//     ValidatingAdmissionPolicy the API server runs after every mutating webhook
package workspace
