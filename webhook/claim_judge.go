package webhook

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
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
	Metrics     *audit.Metrics
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

// Judge answers for claim (as submitted, or the workspace claim of a script pod).
func (j *ClaimJudge) Judge(ctx context.Context, claim *corev1.PersistentVolumeClaim) (ClaimVerdict, error) {
	if !asksReadWriteMany(claim) {
		return ClaimVerdict{Code: reason.NotReadWriteMany, Message: "the claim does not ask for ReadWriteMany"}, nil
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
	class := findClass(classes.Items, name)
	mode := storage.VolumeModeOf(claim.Spec.VolumeMode)
	answer := j.judge().ReadWriteMany(class, mode, storage.Evidence{})
	if answer.Verdict == storage.Unknown {
		ev, err := j.evidence(ctx, name, mode)
		if err != nil {
			return ClaimVerdict{}, err
		}
		answer = j.judge().ReadWriteMany(class, mode, ev)
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
		v.Message = j.refusal(ctx, claim, answer, classes.Items, "cannot serve it")
	default:
		if j.DenyUnknown {
			v.Code, v.Denied = reason.ReadWriteManyUnknown, true
			v.Message = j.refusal(ctx, claim, answer, classes.Items, "has unknown capability and this cluster refuses unknown classes")
		} else {
			v.Code, v.Message = reason.ReadWriteManyUnverified, answer.Message()
			v.Warnings = []string{fmt.Sprintf("cannot tell whether StorageClass %q (provisioner %s) can serve ReadWriteMany; if it cannot, claim %s will stay Pending for ever. %s",
				name, answer.Provisioner, claimName(claim), declareHint(name))}
		}
	}
	return v, nil
}

// refusal says what is wrong, on which claim, why we believe it, and what to do instead.
func (j *ClaimJudge) refusal(ctx context.Context, claim *corev1.PersistentVolumeClaim, a storage.Answer, classes []storagev1.StorageClass, what string) string {
	alternatives := storage.RWXCapableClasses(j.judge(), classes, a.VolumeMode, func(class string) storage.Evidence {
		ev, _ := j.evidence(ctx, class, a.VolumeMode) // a failed lookup only loses a suggestion
		return ev
	})
	instead := "no StorageClass in this cluster is known to serve ReadWriteMany, so ask for ReadWriteOnce (agent chart: persistence.accessModes={ReadWriteOnce}; the webhook pins script pods to the volume's node)"
	if len(alternatives) > 0 {
		instead = fmt.Sprintf("use a class that can serve ReadWriteMany here (%s), or ask for ReadWriteOnce (agent chart: persistence.accessModes={ReadWriteOnce}; the webhook pins script pods to the volume's node)",
			strings.Join(alternatives, ", "))
	}
	return fmt.Sprintf("PersistentVolumeClaim %s asks for ReadWriteMany, but StorageClass %q (provisioner %s) %s: %s [source: %s%s]. It would stay Pending for ever. Instead, %s. %s",
		claimName(claim), a.Class, a.Provisioner, what, a.Reason, a.Source, refSuffix(a.Reference), instead, declareHint(a.Class))
}

func (j *ClaimJudge) judge() storage.Judge {
	if j.Overrides == nil {
		return storage.Judge{}
	}
	return storage.Judge{Overrides: j.Overrides()}
}

// evidence reads the volumes of class live, page by page, keeping only what the evidence needs.
func (j *ClaimJudge) evidence(ctx context.Context, class string, mode corev1.PersistentVolumeMode) (storage.Evidence, error) {
	var ev storage.Evidence
	if j.Live == nil {
		return ev, nil
	}
	cont := ""
	for {
		var page corev1.PersistentVolumeList
		if err := j.Live.List(ctx, &page, client.Limit(agent.PageSize), client.Continue(cont)); err != nil {
			return ev, fmt.Errorf("listing PersistentVolumes: %w", err)
		}
		e := storage.CollectEvidence(class, mode, page.Items)
		ev.BoundRWXVolumes = append(ev.BoundRWXVolumes, e.BoundRWXVolumes...)
		ev.StaticVolumes = append(ev.StaticVolumes, e.StaticVolumes...)
		if cont = page.Continue; cont == "" {
			sort.Strings(ev.BoundRWXVolumes)
			return ev, nil
		}
	}
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
