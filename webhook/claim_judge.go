package webhook

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/audit"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/reason"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/storage"
)

// ClaimJudge decides whether a claim's ReadWriteMany request can be served by its class. It
// reads StorageClasses and PersistentVolumes from the cache; the verdict is package storage's.
type ClaimJudge struct {
	// Cache holds the StorageClasses.
	Cache client.Reader
	// Live lists PersistentVolumes, page by page, when cluster evidence is needed: only for a
	// class that no annotation, override or table row decides.
	Live client.Reader
	// Overrides returns the admin's current override file (nil: none).
	Overrides func() *storage.Overrides
	// DenyUnknown refuses classes of unknown capability instead of warning.
	DenyUnknown bool
	// DenyUnbindable refuses, instead of warning, a claim that can only bind to an existing
	// volume when none can take it (CannotBind).
	DenyUnbindable bool
	Metrics        *audit.Metrics
}

// ClaimVerdict is the decision about one claim.
type ClaimVerdict struct {
	Code     reason.Code
	Denied   bool
	Message  string
	Warnings []string
	Class    string
	Answer   storage.Answer
}

func (v ClaimVerdict) describe(o *audit.Outcome) {
	o.StorageClass, o.Provisioner = v.Class, v.Answer.Provisioner
	if v.Answer.Source != "" {
		o.CapabilitySource = string(v.Answer.Source)
	}
	o.Warnings = append(o.Warnings, v.Warnings...)
}

// Evidence bounds: the one live listing of PersistentVolumes a claim may cost stops after
// this many pages or this long, well inside the webhook's 5 s timeout. An unfinished listing
// settles nothing: the claim is admitted with a warning (CapabilityCheckFailed).
const (
	evidencePages   = 10
	evidenceTimeout = 2 * time.Second
)

// Judge answers for claim (as submitted, or the workspace claim of a script pod). An error
// means a fact could not be read; callers admit with a warning (CheckFailed), never refuse.
func (j *ClaimJudge) Judge(ctx context.Context, claim *corev1.PersistentVolumeClaim) (ClaimVerdict, error) {
	return j.judgeWith(ctx, claim, &volumeListing{})
}

// judgeWith is Judge reading PersistentVolumes through listing, which one request may share.
func (j *ClaimJudge) judgeWith(ctx context.Context, claim *corev1.PersistentVolumeClaim, listing *volumeListing) (ClaimVerdict, error) {
	if !asksReadWriteMany(claim) {
		return ClaimVerdict{Code: reason.NotReadWriteMany, Message: "the claim does not ask for ReadWriteMany"}, nil
	}
	// What a claim is bound to decides: Kubernetes never re-classes a bound claim, so its
	// class is taken as written, never resolved to today's default, and a class that is gone
	// or was never there leaves the bound volume to speak for itself.
	bound := claim.Status.Phase == corev1.ClaimBound
	if bound {
		if v, done, err := j.judgeBound(ctx, claim); done || err != nil {
			return v, err
		}
	}
	if !bound && claim.Spec.VolumeName != "" {
		// Static binding (the agent chart's NFS mode): the named volume decides, whatever
		// storageClassName says; that class need not exist and no provisioner runs.
		return ClaimVerdict{Code: reason.StaticallyBound, Message: fmt.Sprintf(
			"the claim names PersistentVolume %q (spec.volumeName) and binds to it statically; no provisioner is involved", claim.Spec.VolumeName)}, nil
	}
	var classes storagev1.StorageClassList
	if err := j.Cache.List(ctx, &classes); err != nil {
		return ClaimVerdict{}, fmt.Errorf("listing StorageClasses: %w", err)
	}
	name, found, how := storage.ResolveClassName(claim, classes.Items)
	switch {
	case name == "":
		return ClaimVerdict{Code: reason.NoStorageClass, Message: "the claim resolves to no StorageClass (" + how + "); it binds to a pre-created volume"}, nil
	case !found:
		msg := fmt.Sprintf("StorageClass %q (%s) does not exist, so ReadWriteMany cannot be checked; the claim stays Pending until the class exists", name, how)
		return ClaimVerdict{Code: reason.ReadWriteManyUnverified, Class: name, Message: msg, Warnings: []string{msg}}, nil
	}
	nodes, err := j.nodeCount(ctx)
	if err != nil {
		return ClaimVerdict{}, err
	}
	class := findClass(classes.Items, name)
	mode := storage.VolumeModeOf(claim.Spec.VolumeMode)
	ev := &clusterEvidence{judge: j, listing: listing, mode: mode, nodes: nodes}
	answer := j.judge().ReadWriteMany(class, mode, storage.Evidence{Nodes: nodes})
	if answer.Verdict == storage.Unknown {
		e, err := ev.of(ctx, name)
		if err != nil {
			return ClaimVerdict{}, err
		}
		answer = j.judge().ReadWriteMany(class, mode, e)
	}
	if j.Metrics != nil {
		j.Metrics.Capability.WithLabelValues(string(answer.Source), string(answer.Verdict), answer.Provisioner).Inc()
	}
	v := ClaimVerdict{Class: name, Answer: answer}
	switch answer.Verdict {
	case storage.Supported:
		v.Code, v.Message = reason.ReadWriteManySupported, answer.Message()
	case storage.Unsupported:
		v.Code, v.Denied = reason.ReadWriteManyUnsupported, true
		v.Message = j.refusal(ctx, claim, answer, classes.Items, ev, "cannot serve it")
	default:
		if j.DenyUnknown {
			v.Code, v.Denied = reason.ReadWriteManyUnknown, true
			v.Message = j.refusal(ctx, claim, answer, classes.Items, ev, "has unknown capability and this cluster refuses unknown classes")
		} else {
			v.Code, v.Message = reason.ReadWriteManyUnverified, answer.Message()
			v.Warnings = []string{fmt.Sprintf("cannot tell whether StorageClass %q (provisioner %s) can serve ReadWriteMany (%s); if it cannot, claim %s will stay Pending for ever. %s",
				name, answer.Provisioner, answer.Reason, claimName(claim), declareHint(name))}
		}
	}
	return v, nil
}

// judgeBound answers for a Bound claim whose own class is empty or gone; done is false when
// the claim names an existing class, which then judges the volume it provisioned.
func (j *ClaimJudge) judgeBound(ctx context.Context, claim *corev1.PersistentVolumeClaim) (ClaimVerdict, bool, error) {
	bound := ClaimVerdict{Code: reason.ReadWriteManyBound}
	class := storage.OwnClassName(claim)
	if class == "" {
		bound.Message = fmt.Sprintf("the claim is Bound to PersistentVolume %q with access modes %v and names no StorageClass; that volume decides, not today's default class",
			claim.Spec.VolumeName, claim.Status.AccessModes)
		return bound, true, nil
	}
	var sc storagev1.StorageClass
	err := j.Cache.Get(ctx, client.ObjectKey{Name: class}, &sc)
	switch {
	case apierrors.IsNotFound(err):
		bound.Message = fmt.Sprintf("the claim is Bound to PersistentVolume %q with access modes %v; its StorageClass %q no longer exists, so that volume decides",
			claim.Spec.VolumeName, claim.Status.AccessModes, class)
		return bound, true, nil
	case err != nil:
		return ClaimVerdict{}, true, fmt.Errorf("reading StorageClass %s: %w", class, err)
	}
	return ClaimVerdict{}, false, nil
}

// CheckFailed is the verdict when the check itself failed: the claim is admitted with a
// warning that says so, as the claim webhooks' failurePolicy Ignore would have it. A
// refusal must come from a fact, never from our own trouble reading one.
func CheckFailed(claim *corev1.PersistentVolumeClaim, err error) ClaimVerdict {
	msg := fmt.Sprintf("could not check whether claim %s can be served as ReadWriteMany (%v); admitted unchecked", claimName(claim), err)
	return ClaimVerdict{Code: reason.CapabilityCheckFailed, Message: msg, Warnings: []string{msg}}
}

// refusal says what is wrong, on which claim, why we believe it, and what to do instead.
func (j *ClaimJudge) refusal(ctx context.Context, claim *corev1.PersistentVolumeClaim, a storage.Answer, classes []storagev1.StorageClass, ev *clusterEvidence, what string) string {
	alternatives := storage.RWXCapableClasses(j.judge(), classes, a.VolumeMode, ev.nodes, func(class string) storage.Evidence {
		e, _ := ev.of(ctx, class) // a failed lookup only loses a suggestion
		return e
	})
	instead := "no StorageClass in this cluster is known to serve ReadWriteMany, so ask for ReadWriteOnce (agent chart: persistence.accessModes={ReadWriteOnce}; the webhook pins script pods to the volume's node)"
	if len(alternatives) > 0 {
		instead = fmt.Sprintf("use a class that can serve ReadWriteMany here (%s), or ask for ReadWriteOnce (agent chart: persistence.accessModes={ReadWriteOnce}; the webhook pins script pods to the volume's node)",
			strings.Join(alternatives, ", "))
	}
	return fmt.Sprintf("PersistentVolumeClaim %s asks for ReadWriteMany, but StorageClass %q (provisioner %s) %s: %s [source: %s%s]. It would stay Pending for ever. Instead, %s. %s",
		claimName(claim), a.Class, a.Provisioner, what, a.Reason, a.Source, refSuffix(a.Reference), instead, declareHint(a.Class))
}

// nodeCount counts the cached Nodes (0 when no node cache is wired).
func (j *ClaimJudge) nodeCount(ctx context.Context) (int, error) {
	var nodes corev1.NodeList
	if err := j.Cache.List(ctx, &nodes, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("listing nodes: %w", err)
	}
	return len(nodes.Items), nil
}

func (j *ClaimJudge) judge() storage.Judge {
	if j.Overrides == nil {
		return storage.Judge{}
	}
	return storage.Judge{Overrides: j.Overrides()}
}

// volumeListing lists the PersistentVolumes at most once per request, live and bounded (see
// evidencePages): the evidence, the refusal's alternative classes and the binding check of
// one claim all read the same listing.
type volumeListing struct {
	listed bool
	err    error
	pvs    []corev1.PersistentVolume
}

func (l *volumeListing) volumes(ctx context.Context, j *ClaimJudge) ([]corev1.PersistentVolume, error) {
	if !l.listed {
		l.listed = true
		l.pvs, l.err = j.listVolumes(ctx)
	}
	return l.pvs, l.err
}

// clusterEvidence answers for every class of one claim's volume mode from one listing.
type clusterEvidence struct {
	judge   *ClaimJudge
	listing *volumeListing
	mode    corev1.PersistentVolumeMode
	nodes   int
}

func (e *clusterEvidence) of(ctx context.Context, class string) (storage.Evidence, error) {
	pvs, err := e.listing.volumes(ctx, e.judge)
	if err != nil {
		return storage.Evidence{Nodes: e.nodes}, err
	}
	ev := storage.CollectEvidence(class, e.mode, pvs)
	ev.Nodes = e.nodes
	return ev, nil
}

// listVolumes reads every PersistentVolume live, page by page, trimmed to what the evidence
// reads, within evidencePages pages and evidenceTimeout.
func (j *ClaimJudge) listVolumes(ctx context.Context) ([]corev1.PersistentVolume, error) {
	if j.Live == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, evidenceTimeout)
	defer cancel()
	var out []corev1.PersistentVolume
	cont := ""
	for page := 0; ; page++ {
		if page == evidencePages {
			return nil, fmt.Errorf("more than %d PersistentVolumes to read for cluster evidence", evidencePages*agent.PageSize)
		}
		var list corev1.PersistentVolumeList
		if err := j.Live.List(ctx, &list, client.Limit(agent.PageSize), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("listing PersistentVolumes: %w", err)
		}
		for i := range list.Items {
			pv := &list.Items[i]
			out = append(out, corev1.PersistentVolume{
				ObjectMeta: metav1.ObjectMeta{Name: pv.Name, Annotations: pickAnnotation(pv.Annotations, corev1.BetaStorageClassAnnotation)},
				Spec: corev1.PersistentVolumeSpec{AccessModes: pv.Spec.AccessModes, VolumeMode: pv.Spec.VolumeMode,
					StorageClassName: pv.Spec.StorageClassName, Capacity: pv.Spec.Capacity, ClaimRef: claimRefOf(pv)},
				Status: corev1.PersistentVolumeStatus{Phase: pv.Status.Phase},
			})
		}
		if cont = list.Continue; cont == "" {
			return out, nil
		}
	}
}

func claimRefOf(pv *corev1.PersistentVolume) *corev1.ObjectReference {
	if r := pv.Spec.ClaimRef; r != nil {
		return &corev1.ObjectReference{Namespace: r.Namespace, Name: r.Name}
	}
	return nil
}

// cannotBind explains why a claim being created can never bind, or returns "": a claim that
// nothing provisions (it names its volume, or its class is kubernetes.io/no-provisioner) and
// that no existing volume can take. The agent chart's migration off NFS hits it when
// persistence.size differs from the static volume's capacity. One GET for a named volume, else
// the bounded listing.
func (j *ClaimJudge) cannotBind(ctx context.Context, claim *corev1.PersistentVolumeClaim, listing *volumeListing) (string, error) {
	if claim.Status.Phase == corev1.ClaimBound || j.Live == nil {
		return "", nil
	}
	var classes storagev1.StorageClassList
	if err := j.Cache.List(ctx, &classes); err != nil {
		return "", fmt.Errorf("listing StorageClasses: %w", err)
	}
	class, found, _ := storage.ResolveClassName(claim, classes.Items)
	provisioner := ""
	if found {
		provisioner = findClass(classes.Items, class).Provisioner
	}
	if !storage.NeedsExistingVolume(claim, provisioner) {
		return "", nil
	}
	var volumes []corev1.PersistentVolume
	if name := claim.Spec.VolumeName; name != "" {
		var pv corev1.PersistentVolume
		switch err := j.Live.Get(ctx, client.ObjectKey{Name: name}, &pv); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return "", fmt.Errorf("reading PersistentVolume %s: %w", name, err)
		default:
			volumes = []corev1.PersistentVolume{pv}
		}
	} else {
		var err error
		if volumes, err = listing.volumes(ctx, j); err != nil {
			return "", err
		}
	}
	return storage.Unbindable(claim, class, volumes), nil
}

func pickAnnotation(m map[string]string, key string) map[string]string {
	if v, ok := m[key]; ok {
		return map[string]string{key: v}
	}
	return nil
}

func declareHint(class string) string {
	return fmt.Sprintf("If the class can in fact serve it, a cluster admin can declare so: kubectl annotate storageclass %s %s='[\"ReadWriteOnce\",\"ReadWriteMany\"]'",
		class, storage.AnnotationAccessModes)
}

func refSuffix(ref string) string {
	if ref == "" {
		return ""
	}
	return ", " + ref
}

func asksReadWriteMany(c *corev1.PersistentVolumeClaim) bool {
	for _, m := range c.Spec.AccessModes {
		if m == corev1.ReadWriteMany {
			return true
		}
	}
	return false
}

func findClass(classes []storagev1.StorageClass, name string) *storagev1.StorageClass {
	for i := range classes {
		if classes[i].Name == name {
			return &classes[i]
		}
	}
	return nil
}

func claimName(c *corev1.PersistentVolumeClaim) string {
	name := c.Name
	if name == "" {
		name = c.GenerateName + "*"
	}
	return c.Namespace + "/" + name
}
