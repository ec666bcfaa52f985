package tentacle

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Install creates in a.Namespace (which must exist, with its default ServiceAccount when the
// ServiceAccount admission plugin runs) what the agent's chart creates: its ServiceAccounts,
// the workspace (CreateWorkspace) and the Tentacle Deployment. ServiceAccounts that exist
// already are kept.
func (a Agent) Install(ctx context.Context, c client.Client) error {
	for _, sa := range a.ServiceAccounts() {
		if err := c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ServiceAccount %s: %w", sa.Name, err)
		}
	}
	if err := a.CreateWorkspace(ctx, c); err != nil {
		return err
	}
	if err := c.Create(ctx, a.Deployment()); err != nil {
		return fmt.Errorf("creating Deployment %s: %w", a.DeploymentName(), err)
	}
	return nil
}

// CreateWorkspace creates the agent's claim and the volume it binds to: the chart's NFS volume
// first (as Helm orders them), else the claim, then a volume pre-bound to it with the class the
// claim was stored with (the default class, for chart v3's default).
func (a Agent) CreateWorkspace(ctx context.Context, c client.Client) error {
	if a.Storage == StorageNFS {
		if err := c.Create(ctx, a.Volume(a.NFSClassName())); err != nil {
			return fmt.Errorf("creating the NFS volume: %w", err)
		}
		if err := c.Create(ctx, a.Claim()); err != nil {
			return fmt.Errorf("creating claim %s: %w", a.ClaimName(), err)
		}
		return nil
	}
	claim := a.Claim()
	if err := c.Create(ctx, claim); err != nil {
		return fmt.Errorf("creating claim %s: %w", a.ClaimName(), err)
	}
	if err := c.Create(ctx, a.Volume(ptr.Deref(claim.Spec.StorageClassName, ""))); err != nil {
		return fmt.Errorf("creating volume %s: %w", a.VolumeName(), err)
	}
	return nil
}

// TentaclePodsOf selects the agent's Tentacle pods as its Deployment does (name and instance),
// minus the pre-install hook pod, which shares those labels but is no ReplicaSet's.
func (a Agent) TentaclePodsOf() []client.ListOption {
	return []client.ListOption{client.InNamespace(a.Namespace), client.MatchingLabels(a.Deployment().Spec.Selector.MatchLabels), client.HasLabels{"pod-template-hash"}}
}

// RunningTentacle is the agent's running, not-terminating Tentacle pod, nil when there is none.
func (a Agent) RunningTentacle(ctx context.Context, c client.Reader) (*corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, a.TentaclePodsOf()...); err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].Status.Phase == corev1.PodRunning && pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	return nil, nil
}
