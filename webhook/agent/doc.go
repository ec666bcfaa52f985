// Package agent gathers the facts the workspace decision needs about the agent a script pod
// belongs to: its Tentacle pods, its workspace claim, and the node holding that claim's volume.
// It reads only a cache scoped to Tentacle pods (by label) plus trimmed copies of claims,
// volumes and VolumeAttachments; a cache miss falls back to one live GET.
package agent
