package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/octopus-agent-tools/workspace-webhook/manifests/base"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
)

// Scope is what Gather reads: the agents of one namespace ("" = all), and the webhook
// configurations by name ("" = the names the manifests give them).
type Scope struct {
	Namespace                    string
	MutatingName, ValidatingName string
}

// Gather reads a Snapshot from a cluster.
func Gather(ctx context.Context, c client.Reader, disc discovery.ServerGroupsInterface, scope Scope) (Snapshot, error) {
	s := Snapshot{Now: time.Now()}
	var err error
	if s.ShippedMutating, s.ShippedValidating, err = base.WebhookConfigurations(); err != nil {
		return s, err
	}
	if s.ShippedPolicy, _, err = base.ScriptPodPolicy(); err != nil {
		return s, err
	}
	mName, vName := s.ShippedMutating.Name, s.ShippedValidating.Name
	if scope.MutatingName != "" {
		mName = scope.MutatingName
	}
	if scope.ValidatingName != "" {
		vName = scope.ValidatingName
	}
	namespace := scope.Namespace
	var classes storagev1.StorageClassList
	if err := c.List(ctx, &classes); err != nil {
		return s, fmt.Errorf("listing StorageClasses: %w", err)
	}
	s.Classes = classes.Items
	var pvs corev1.PersistentVolumeList
	if err := c.List(ctx, &pvs); err != nil {
		return s, fmt.Errorf("listing PersistentVolumes: %w", err)
	}
	s.Volumes = pvs.Items
	in := client.InNamespace(namespace)
	var claims corev1.PersistentVolumeClaimList
	if err := c.List(ctx, &claims, in); err != nil {
		return s, fmt.Errorf("listing PersistentVolumeClaims: %w", err)
	}
	s.Claims = claims.Items
	// The agent chart's pods (every generation labels them with the chart) and script pods.
	for _, sel := range []client.HasLabels{{agent.ChartLabel}, {agent.ScriptTicketLabel}} {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, in, sel); err != nil {
			return s, fmt.Errorf("listing pods: %w", err)
		}
		s.Pods = append(s.Pods, pods.Items...)
	}
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return s, fmt.Errorf("listing nodes: %w", err)
	}
	s.Nodes = len(nodes.Items)
	if disc != nil {
		groups, err := disc.ServerGroups()
		if err != nil {
			return s, fmt.Errorf("discovering API groups: %w", err)
		}
		for _, g := range groups.Groups {
			s.OpenShift = s.OpenShift || g.Name == "security.openshift.io"
		}
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	switch err := c.Get(ctx, client.ObjectKey{Name: mName}, m); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return s, fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", mName, err)
	default:
		s.Mutating = m
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	switch err := c.Get(ctx, client.ObjectKey{Name: vName}, v); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return s, fmt.Errorf("reading ValidatingWebhookConfiguration %s: %w", vName, err)
	default:
		s.Validating = v
	}
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
	switch err := c.Get(ctx, client.ObjectKey{Name: s.ShippedPolicy.Name}, p); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return s, fmt.Errorf("reading ValidatingAdmissionPolicy %s: %w", s.ShippedPolicy.Name, err)
	default:
		s.Policy = p
	}
	var bindings admissionregistrationv1.ValidatingAdmissionPolicyBindingList
	if err := c.List(ctx, &bindings); err != nil {
		return s, fmt.Errorf("listing ValidatingAdmissionPolicyBindings: %w", err)
	}
	for _, b := range bindings.Items {
		if b.Spec.PolicyName == s.ShippedPolicy.Name {
			s.PolicyBindings = append(s.PolicyBindings, b)
		}
	}
	var namespaces metav1.PartialObjectMetadataList
	namespaces.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
	if err := c.List(ctx, &namespaces, client.HasLabels{enforcement.Label}); err != nil {
		return s, fmt.Errorf("listing namespaces labelled %s: %w", enforcement.Label, err)
	}
	for _, n := range namespaces.Items {
		if namespace == "" || n.Name == namespace {
			if s.EnforcementLabels == nil {
				s.EnforcementLabels = map[string]string{}
			}
			s.EnforcementLabels[n.Name] = n.Labels[enforcement.Label]
		}
	}
	s.ReadyEndpoints = map[string]int{}
	for _, svc := range s.WebhookServices() {
		if _, done := s.ReadyEndpoints[svc]; done {
			continue
		}
		ns, name, _ := strings.Cut(svc, "/")
		var slices discoveryv1.EndpointSliceList
		if err := c.List(ctx, &slices, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: name}); err != nil {
			return s, fmt.Errorf("listing EndpointSlices of %s: %w", svc, err)
		}
		ready := 0
		for _, sl := range slices.Items {
			for _, e := range sl.Endpoints {
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					ready++
				}
			}
		}
		s.ReadyEndpoints[svc] = ready
	}
	return s, nil
}
