// Package agent gathers the facts the workspace decision needs about the agent a script pod
// belongs to: its Tentacle pods, its workspace claim, and the node holding that claim's volume.
// It reads caches scoped by label to Tentacle pods (chart v3's component label; the chart's
// default name label for v1/v2), the agent chart's claims and trimmed Nodes; a claim cache
// miss is one live GET, a v1/v2 agent with nameOverride one live label-selected pod list,
// and VolumeAttachments are listed live only when no Tentacle pod runs.
package agent
