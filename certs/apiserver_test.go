package certs

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

const (
	itNamespace = "octopus"
	itService   = "workspace-webhook"
	itSecret    = "workspace-webhook-certs"
	itWebhooks  = "test-webhook"
	itUser      = "workspace-webhook"
)

// startAPIServer starts kube-apiserver and etcd from bin/k8s/<version> (or
// KUBEBUILDER_ASSETS) and returns an admin config and one for a user holding exactly the
// RBAC the chart grants: get/update/patch by name, create on secrets, no list or watch.
func startAPIServer(t *testing.T) (admin client.Client, restricted *rest.Config) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the kube-apiserver test")
	}
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		version := os.Getenv("KUBERNETES_VERSION")
		if version == "" {
			version = "v1.36.3"
		}
		dir = filepath.Join(repoRoot(t), "bin", "k8s", version)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing in %s (run make controlplane)", bin, dir)
			}
			t.Skipf("%s missing in %s: run `make controlplane` or set KUBEBUILDER_ASSETS", bin, dir)
		}
	}
	env := &envtest.Environment{BinaryAssetsDirectory: dir, ControlPlaneStartTimeout: 2 * time.Minute}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	if admin, err = client.New(cfg, client.Options{}); err != nil {
		t.Fatal(err)
	}
	user, err := env.AddUser(envtest.User{Name: itUser}, nil)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	verbs := []string{"get", "update", "patch"}
	objs := append([]client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: itNamespace}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: itNamespace, Name: itUser}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{itSecret}, Verbs: verbs},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: itNamespace, Name: itUser},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: itUser},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: itUser}}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: itUser}, Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{admissionregistrationv1.GroupName}, ResourceNames: []string{itWebhooks}, Verbs: verbs,
			Resources: []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: itUser},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: itUser},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: itUser}}},
	}, webhookConfigs(itNamespace, itService)...)
	for _, o := range objs {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("creating %T: %v", o, err)
		}
	}
	// RBAC reaches the authorizer through an informer: wait until it applies.
	rc, err := client.New(user.Config(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rc.Get(ctx, client.ObjectKey{Namespace: itNamespace, Name: itSecret}, &corev1.Secret{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RBAC never applied: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := rc.List(ctx, &corev1.SecretList{}, client.InNamespace(itNamespace)); !apierrors.IsForbidden(err) {
		t.Fatalf("the test user must not be able to list secrets (err %v)", err)
	}
	restricted = user.Config()
	restricted.QPS, restricted.Burst = 1000, 2000 // replicas poll every 50 ms here, not every minute
	return admin, restricted
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// createCounter wraps the restricted client and counts Creates and lost Create races.
type createCounter struct{ creates, alreadyExists atomic.Int64 }

func (c *createCounter) client(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	base, err := client.NewWithWatch(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return interceptor.NewClient(base, interceptor.Funcs{
		Create: func(ctx context.Context, cl client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			c.creates.Add(1)
			err := cl.Create(ctx, obj, opts...)
			if apierrors.IsAlreadyExists(err) {
				c.alreadyExists.Add(1)
			}
			return err
		},
	})
}

func newReplica(t *testing.T, c client.Client, clk *clocktesting.FakeClock, log logr.Logger) *Manager {
	t.Helper()
	opts := testOptions(t.TempDir(), clk)
	if log.GetSink() != nil {
		opts.Logger = log
	}
	opts.Namespace, opts.ServiceName, opts.SecretName = itNamespace, itService, itSecret
	opts.CheckInterval = 50 * time.Millisecond
	m, err := NewManager(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t *testing.T, m *Manager, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.opts.CertDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
