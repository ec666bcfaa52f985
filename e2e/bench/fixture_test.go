package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/tentacle"
	"github.com/octopus-agent-tools/workspace-webhook/e2e/webhookprocess"
)

// benchAgent is the agent every review is about: chart v3 defaults, a ReadWriteOnce claim,
// so the webhook's whole path runs (find the Tentacle pod, its claim, its node; pin).
func benchAgent(namespace string) tentacle.Agent {
	return tentacle.Agent{Namespace: namespace, Release: "prod", AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}
}

// populationAgent is the i-th agent of a populated cluster: chart generations mixed, every
// other one a chart v2 agent (no component label), so both Tentacle pod caches carry load.
func populationAgent(i int) tentacle.Agent {
	a := benchAgent(fmt.Sprintf("octopus-agent-%03d", i))
	if i%2 == 1 {
		a.Generation = 2
	}
	return a
}

// seedAgent seeds a (SeedAgent) with its Tentacle pod Running on node, a Ready Node created
// if missing: the in-process, start-up and memory clusters run no kwok.
func seedAgent(ctx context.Context, c client.Client, a tentacle.Agent, node string) (*corev1.Pod, error) {
	if err := EnsureNode(ctx, c, node); err != nil {
		return nil, err
	}
	pod, err := SeedAgent(ctx, c, a, node)
	if err != nil {
		return nil, err
	}
	return pod, MarkRunning(ctx, c, pod)
}

// scriptPodObject is the script pod Tentacle 9.1 creates on RWO storage (StyleV3), as the API
// server hands it to mutating webhooks: defaulted (server-side dry run), with what the
// ServiceAccount and DefaultTolerationSeconds admission plugins add in a real cluster
// (a kube-api-access volume and its mounts, two tolerations), and without uid and
// creationTimestamp, which are only set after mutating admission.
func scriptPodObject(ctx context.Context, c client.Client, a tentacle.Agent, ticket string) (*corev1.Pod, error) {
	pod := a.ScriptPod(ticket, tentacle.StyleV3)
	if err := c.Create(ctx, pod, client.DryRunAll, client.FieldOwner("octopus-tentacle")); err != nil {
		return nil, fmt.Errorf("dry-run creating the script pod: %w", err)
	}
	if !hasVolumePrefix(pod, "kube-api-access-") {
		name := "kube-api-access-" + string(uuid.NewUUID())[:5]
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			DefaultMode: ptr.To[int32](0o644),
			Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
					Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
				{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
					FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
			}}}})
		for i := range pod.Spec.Containers {
			pod.Spec.Containers[i].VolumeMounts = append(pod.Spec.Containers[i].VolumeMounts,
				corev1.VolumeMount{Name: name, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"})
		}
	}
	if len(pod.Spec.Tolerations) == 0 {
		for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)})
		}
	}
	pod.UID, pod.CreationTimestamp, pod.ResourceVersion = "", metav1.Time{}, ""
	pod.APIVersion, pod.Kind = "v1", "Pod"
	return pod, nil
}

func hasVolumePrefix(pod *corev1.Pod, prefix string) bool {
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, prefix) {
			return true
		}
	}
	return false
}

// admissionReview encodes the AdmissionReview the API server sends for a pod CREATE by
// the agent's Tentacle service account (a bound token, with its node and pod in Extra).
func admissionReview(podJSON []byte, namespace, name string) []byte {
	return review(podJSON, namespace, name, false)
}

func review(podJSON []byte, namespace, name string, dryRun bool) []byte {
	return webhookprocess.AdmissionReview(podJSON, namespace, name, dryRun)
}

// admitted is the pod the validating webhooks see: the mutating webhook's patch applied,
// with the uid and creationTimestamp the registry sets before validation.
func admitted(podJSON, patch []byte) ([]byte, error) {
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, err
	}
	out, err := p.Apply(podJSON)
	if err != nil {
		return nil, err
	}
	var pod corev1.Pod
	if err := json.Unmarshal(out, &pod); err != nil {
		return nil, err
	}
	pod.UID, pod.CreationTimestamp = types.UID(uuid.NewUUID()), metav1.Now()
	return json.Marshal(&pod)
}
