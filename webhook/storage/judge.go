package storage

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Verdict is whether a StorageClass can serve ReadWriteMany for one volume mode.
type Verdict string

const (
	Supported   Verdict = "Supported"
	Unsupported Verdict = "Unsupported"
	Unknown     Verdict = "Unknown"
)

// Source is where a verdict came from, in precedence order.
type Source string

const (
	SourceAnnotation Source = "StorageClassAnnotation"
	SourceOverride   Source = "OverrideFile"
	SourceTable      Source = "BuiltInTable"
	SourceEvidence   Source = "ClusterEvidence"
	SourceNone       Source = "None"
)

// Answer is a verdict with its provenance, ready to be quoted in a denial or warning.
type Answer struct {
	Verdict     Verdict
	Source      Source
	Provisioner string // the class's provisioner as written on the class
	Reason      string // one human sentence: why
	Reference   string // where the fact comes from (driver repo + file, annotation, override entry, PV names)
	Notes       []string
	// Class and VolumeMode echo the question, so a message can be built from the Answer alone.
	Class      string
	VolumeMode corev1.PersistentVolumeMode
}

// Message renders the answer as one line for a denial message, warning or log.
func (a Answer) Message() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ReadWriteMany %s on StorageClass %q", a.VolumeMode, a.Class)
	if a.Provisioner != "" {
		fmt.Fprintf(&b, " (provisioner %s)", a.Provisioner)
	}
	fmt.Fprintf(&b, ": %s (%s): %s", a.Verdict, a.Source, a.Reason)
	if a.Reference != "" {
		fmt.Fprintf(&b, " [see %s]", a.Reference)
	}
	for _, n := range a.Notes {
		fmt.Fprintf(&b, " Note: %s", n)
	}
	return b.String()
}

// Judge answers capability questions. The zero value is usable (no override file).
type Judge struct {
	// Overrides from the admin's override file; may be nil. Take it from
	// OverrideWatcher.Current() per request so reloads apply without restart.
	Overrides *Overrides
}

// ReadWriteMany answers "can class serve ReadWriteMany for volume mode mode?" from, in order:
// the class's annotations, the override file, the built-in table, cluster evidence, else Unknown.
// An empty mode means Filesystem, as in the Kubernetes API. It never panics.
func (j Judge) ReadWriteMany(class *storagev1.StorageClass, mode corev1.PersistentVolumeMode, ev Evidence) Answer {
	mode = normalizeMode(mode)
	if class == nil {
		return Answer{Verdict: Unknown, Source: SourceNone, VolumeMode: mode,
			Reason: "no StorageClass was given, so there is nothing to judge"}
	}
	base := Answer{Class: class.Name, Provisioner: class.Provisioner, VolumeMode: mode}
	if mode != corev1.PersistentVolumeFilesystem && mode != corev1.PersistentVolumeBlock {
		base.Verdict, base.Source = Unknown, SourceNone
		base.Reason = fmt.Sprintf("volume mode %q is neither Filesystem nor Block", mode)
		return base
	}
	a := j.decide(class, mode, ev, base)
	a.Notes = append(a.Notes, contradictionNotes(a, ev)...)
	return a
}

func (j Judge) decide(class *storagev1.StorageClass, mode corev1.PersistentVolumeMode, ev Evidence, base Answer) Answer {
	a, ok, notes := fromAnnotations(class, mode, base)
	if ok {
		return withNotes(a, notes)
	}
	notes = append(notes, aliasNotes(class.Provisioner)...)
	a, ok, n := j.Overrides.answer(class.Provisioner, mode, base)
	notes = append(notes, n...)
	if ok {
		return withNotes(a, notes)
	}
	table, inTable := fromTable(class, mode, ev.Nodes, base)
	if inTable && table.Verdict != Unknown {
		return withNotes(table, notes)
	}
	if a, ok := fromEvidence(class.Provisioner, mode, ev, base); ok {
		return withNotes(a, notes)
	}
	if inTable { // a "depends" row that neither the class nor the evidence could settle
		return withNotes(table, notes)
	}
	return withNotes(unknownProvisioner(base), notes)
}

// withNotes puts earlier notes (from sources that were skipped) before the answer's own.
func withNotes(a Answer, earlier []string) Answer {
	if len(earlier) == 0 {
		return a
	}
	a.Notes = append(append([]string(nil), earlier...), a.Notes...)
	return a
}

func unknownProvisioner(base Answer) Answer {
	base.Verdict, base.Source = Unknown, SourceNone
	if strings.TrimSpace(base.Provisioner) == "" {
		base.Reason = "the StorageClass names no provisioner"
		return base
	}
	base.Reason = fmt.Sprintf("provisioner %s is not in the built-in table; declare its capability with the "+
		"StorageClass annotation %s (e.g. '[\"ReadWriteOnce\",\"ReadWriteMany\"]') or an entry in the override file",
		base.Provisioner, AnnotationAccessModes)
	return base
}

func aliasNotes(provisioner string) []string {
	if n := NormalizeProvisioner(provisioner); n != strings.TrimSpace(provisioner) {
		return []string{fmt.Sprintf("in-tree provisioner %s is served by CSI driver %s (CSI migration)", provisioner, n)}
	}
	return nil
}

// contradictionNotes flags a Bound ReadWriteMany volume of the class when the answer says
// Unsupported: the declaration or table may be wrong, and an auditor should see both facts.
func contradictionNotes(a Answer, ev Evidence) []string {
	if a.Verdict != Unsupported || len(ev.BoundRWXVolumes) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("the cluster has Bound ReadWriteMany volume(s) of this class (%s), which contradicts "+
		"this answer; if the class really serves ReadWriteMany, declare it with annotation %s",
		joinNames(ev.BoundRWXVolumes, 3), AnnotationAccessModes)}
}

func normalizeMode(m corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == "" {
		return corev1.PersistentVolumeFilesystem
	}
	return m
}

// VolumeModeOf returns the volume mode a claim or PV spec means: nil is Filesystem.
func VolumeModeOf(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return normalizeMode(*m)
}

// RWXCapableClasses returns the sorted names of the classes judged Supported for ReadWriteMany in
// mode: what to suggest to a user whose class cannot serve it. evidenceFor may be nil; it is
// called only for classes that annotations, overrides and the table leave Unknown.
func RWXCapableClasses(j Judge, classes []storagev1.StorageClass, mode corev1.PersistentVolumeMode, nodes int,
	evidenceFor func(className string) Evidence) []string {
	var names []string
	for i := range classes {
		// Evidence only ever settles an Unknown, so it is gathered only then.
		a := j.ReadWriteMany(&classes[i], mode, Evidence{Nodes: nodes})
		if a.Verdict == Unknown && evidenceFor != nil {
			a = j.ReadWriteMany(&classes[i], mode, evidenceFor(classes[i].Name))
		}
		if a.Verdict == Supported {
			names = append(names, classes[i].Name)
		}
	}
	sort.Strings(names)
	return names
}

func joinNames(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}
