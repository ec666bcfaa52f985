package storage

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
)

// Evidence is what the cluster shows about one StorageClass, gathered by the caller from its
// cache. It is consulted only where the built-in table has no definite answer (see doc.go).
type Evidence struct {
	// BoundRWXVolumes names the Bound PersistentVolumes of the class that have ReadWriteMany
	// in the volume mode being asked about (the caller filters by mode; CollectEvidence does).
	BoundRWXVolumes []string
	// StaticVolumes describes the class's PersistentVolumes; it decides kubernetes.io/no-provisioner
	// classes. Entries of another volume mode are ignored by the Judge.
	StaticVolumes []VolumeFacts
	// Nodes is how many nodes the cluster has, 0 when unknown; it decides provisioners whose
	// volumes are node-local (minikube's hostpath serves every pod of a one-node cluster).
	Nodes int
}

// VolumeFacts is the part of a PersistentVolume that capability depends on.
type VolumeFacts struct {
	Name        string
	AccessModes []corev1.PersistentVolumeAccessMode
	VolumeMode  corev1.PersistentVolumeMode // empty means Filesystem
	Phase       corev1.PersistentVolumePhase
}

// FactsOf extracts VolumeFacts from a PersistentVolume; nil gives the zero value.
func FactsOf(pv *corev1.PersistentVolume) VolumeFacts {
	if pv == nil {
		return VolumeFacts{}
	}
	return VolumeFacts{
		Name:        pv.Name,
		AccessModes: pv.Spec.AccessModes,
		VolumeMode:  VolumeModeOf(pv.Spec.VolumeMode),
		Phase:       pv.Status.Phase,
	}
}

// CollectEvidence builds the Evidence for className and mode from a list of PersistentVolumes
// (any class; the others are skipped). A PV's class is read as Kubernetes does: the legacy beta
// annotation first, then spec.storageClassName.
func CollectEvidence(className string, mode corev1.PersistentVolumeMode, pvs []corev1.PersistentVolume) Evidence {
	var ev Evidence
	mode = normalizeMode(mode)
	for i := range pvs {
		if className == "" || pvClass(&pvs[i]) != className {
			continue
		}
		f := FactsOf(&pvs[i])
		ev.StaticVolumes = append(ev.StaticVolumes, f)
		if f.Phase == corev1.VolumeBound && f.offersRWX(mode) {
			ev.BoundRWXVolumes = append(ev.BoundRWXVolumes, f.Name)
		}
	}
	sort.Strings(ev.BoundRWXVolumes)
	return ev
}

func pvClass(pv *corev1.PersistentVolume) string {
	if c, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
		return c
	}
	return pv.Spec.StorageClassName
}

func (f VolumeFacts) offersRWX(mode corev1.PersistentVolumeMode) bool {
	return normalizeMode(f.VolumeMode) == mode && hasMode(f.AccessModes, corev1.ReadWriteMany)
}

// fromEvidence answers from cluster evidence, or reports false when the evidence settles nothing.
func fromEvidence(provisioner string, mode corev1.PersistentVolumeMode, ev Evidence, base Answer) (Answer, bool) {
	base.Source = SourceEvidence
	if bound := boundRWX(ev, mode); len(bound) > 0 {
		base.Verdict = Supported
		base.Reference = "PersistentVolume " + joinNames(bound, 5)
		base.Reason = fmt.Sprintf("the class already serves ReadWriteMany: %d Bound PersistentVolume(s) of it have "+
			"ReadWriteMany with volumeMode %s", len(bound), mode)
		return base, true
	}
	if NormalizeProvisioner(provisioner) != noProvisioner {
		return Answer{}, false
	}
	return fromStaticVolumes(mode, ev.StaticVolumes, base)
}

// boundRWX merges the caller's list with Bound ReadWriteMany volumes found in StaticVolumes.
func boundRWX(ev Evidence, mode corev1.PersistentVolumeMode) []string {
	seen := map[string]bool{}
	var names []string
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, n := range ev.BoundRWXVolumes {
		add(n)
	}
	for _, f := range ev.StaticVolumes {
		if f.Phase == corev1.VolumeBound && f.offersRWX(mode) {
			add(f.Name)
		}
	}
	sort.Strings(names)
	return names
}

// fromStaticVolumes decides a kubernetes.io/no-provisioner class: it serves exactly what its
// pre-created PersistentVolumes declare.
func fromStaticVolumes(mode corev1.PersistentVolumeMode, pvs []VolumeFacts, base Answer) (Answer, bool) {
	if len(pvs) == 0 {
		return Answer{}, false
	}
	var available, waiting []string
	for _, f := range pvs {
		if !f.offersRWX(mode) {
			continue
		}
		if f.Phase == corev1.VolumeAvailable {
			available = append(available, f.Name)
		} else {
			waiting = append(waiting, f.Name)
		}
	}
	sort.Strings(available)
	sort.Strings(waiting)
	switch {
	case len(available) > 0:
		base.Verdict, base.Reference = Supported, "PersistentVolume "+joinNames(available, 5)
		base.Reason = fmt.Sprintf("the class has no provisioner and %d Available PersistentVolume(s) of it offer "+
			"ReadWriteMany with volumeMode %s", len(available), mode)
	case len(waiting) > 0:
		base.Verdict, base.Reference = Unknown, "PersistentVolume "+joinNames(waiting, 5)
		base.Reason = fmt.Sprintf("the class has no provisioner; PersistentVolume(s) of it offer ReadWriteMany with "+
			"volumeMode %s but none is Available, so a new claim waits until the admin creates one", mode)
	default:
		base.Verdict = Unsupported
		base.Reference = fmt.Sprintf("the %d PersistentVolume(s) of the class", len(pvs))
		base.Reason = fmt.Sprintf("the class has no provisioner and none of its %d PersistentVolume(s) offers "+
			"ReadWriteMany with volumeMode %s, so a ReadWriteMany claim would stay Pending", len(pvs), mode)
	}
	return base, true
}
