package storage

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// A claim that nothing will provision binds only to a PersistentVolume that already exists:
// one it names (spec.volumeName), or, for a class whose provisioner is
// kubernetes.io/no-provisioner, an Available volume of the class. The agent chart's migration
// off NFS (helm upgrade --set persistence.storageClassName=<class>) re-creates the claim with
// persistence.size, so a static volume of another capacity never matches and helm upgrade
// --atomic times out. These are the binding rules of the PV controller that decide it, in
// the order it applies them (k8s.io/component-helpers/storage/volume FindMatchingVolume).

// NeedsExistingVolume tells whether claim can only bind to an existing volume.
func NeedsExistingVolume(claim *corev1.PersistentVolumeClaim, provisioner string) bool {
	return claim.Spec.VolumeName != "" || NormalizeProvisioner(provisioner) == noProvisioner
}

// Unbindable explains why claim (class: its resolved class) can bind to none of volumes, or
// returns "" when one of them can take it. The message names what each candidate lacks and,
// when a volume differs only in size, the persistence.size that fits it.
func Unbindable(claim *corev1.PersistentVolumeClaim, class string, volumes []corev1.PersistentVolume) string {
	request := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	modes := claim.Spec.AccessModes
	mode := VolumeModeOf(claim.Spec.VolumeMode)
	var why []string
	sizes := map[string]bool{}
	for i := range volumes {
		pv := &volumes[i]
		if claim.Spec.VolumeName != "" && pv.Name != claim.Spec.VolumeName {
			continue
		}
		if claim.Spec.VolumeName == "" && pvClass(pv) != class {
			continue
		}
		reasons := mismatches(claim, class, pv, request, modes, mode)
		if len(reasons) == 0 {
			return ""
		}
		capacity := pv.Spec.Capacity[corev1.ResourceStorage]
		if len(reasons) == 1 && strings.HasPrefix(reasons[0], "capacity") {
			sizes[capacity.String()] = true
		}
		why = append(why, fmt.Sprintf("%s (%s %v %s: %s)", pv.Name, capacity.String(), pv.Spec.AccessModes, pvPhase(pv), strings.Join(reasons, ", ")))
	}
	cannot := fmt.Sprintf("no Available PersistentVolume of StorageClass %q can take it", class)
	if claim.Spec.VolumeName != "" {
		cannot = fmt.Sprintf("PersistentVolume %q, which it names, cannot take it", claim.Spec.VolumeName)
	}
	msg := fmt.Sprintf("claim %s/%s can only bind to an existing volume, but %s (it asks %s, %v, volumeMode %s)",
		claim.Namespace, claim.Name, cannot, request.String(), modes, mode)
	switch {
	case len(why) == 0 && claim.Spec.VolumeName != "":
		msg += ": that volume does not exist"
	case len(why) == 0:
		msg += ": the class has no volumes at all"
	default:
		sort.Strings(why)
		msg += ": " + strings.Join(why, "; ")
	}
	msg += ". It would stay Pending for ever (helm upgrade --atomic times out)"
	if len(sizes) == 1 {
		for s := range sizes {
			msg += fmt.Sprintf(". The volume differs only in size: install the agent with --set persistence.size=%s", s)
		}
	}
	return msg
}

func mismatches(claim *corev1.PersistentVolumeClaim, class string, pv *corev1.PersistentVolume, request resource.Quantity,
	modes []corev1.PersistentVolumeAccessMode, mode corev1.PersistentVolumeMode) []string {
	var out []string
	switch ref := pv.Spec.ClaimRef; {
	case ref != nil && (ref.Namespace != claim.Namespace || ref.Name != claim.Name):
		out = append(out, fmt.Sprintf("reserved for claim %s/%s", ref.Namespace, ref.Name))
	case pv.Status.Phase == corev1.VolumeReleased:
		out = append(out, "Released by an earlier claim: clear its spec.claimRef to reuse it")
	case ref == nil && pv.Status.Phase != "" && pv.Status.Phase != corev1.VolumeAvailable:
		out = append(out, "not Available")
	}
	if pvClass(pv) != class {
		out = append(out, fmt.Sprintf("class %q, not %q", pvClass(pv), class))
	}
	if VolumeModeOf(pv.Spec.VolumeMode) != mode {
		out = append(out, "volumeMode "+string(VolumeModeOf(pv.Spec.VolumeMode)))
	}
	for _, m := range modes {
		if !hasMode(pv.Spec.AccessModes, m) {
			out = append(out, "no "+string(m))
		}
	}
	if capacity := pv.Spec.Capacity[corev1.ResourceStorage]; capacity.Cmp(request) < 0 {
		out = append(out, "capacity "+capacity.String()+" < "+request.String())
	}
	return out
}

func pvPhase(pv *corev1.PersistentVolume) string {
	if pv.Status.Phase == "" {
		return "Pending"
	}
	return string(pv.Status.Phase)
}
