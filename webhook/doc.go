// Package webhook holds the admission handlers: thin adapters that decode a request, ask the
// fact finders (package agent) and the pure decisions (packages workspace and storage), and
// answer. Every answer goes through audit.Recorder exactly once.
package webhook
