package controlplane

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// requireBinaries skips when the control-plane binaries were never built, except under CI=true,
// where a missing build is a broken pipeline and must fail.
func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := FindBinaries(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skipf("skipping real control-plane test: %v", err)
	}
}

// TestDeploymentPodRunsOnKwokNode proves the full chain works: apiserver + etcd (envtest),
// controller manager (Deployment -> ReplicaSet -> Pod, default ServiceAccount, node lifecycle),
// scheduler (binding) and kwok (node Ready, pod Running); and that Stop leaves no process behind.
func TestDeploymentPodRunsOnKwokNode(t *testing.T) {
	requireBinaries(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	before := childPIDs(t)
	began := time.Now()
	cp, err := Start(ctx, AllComponents(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("control plane started in %s (logs: %s, kubeconfig: %s)", time.Since(began).Round(time.Millisecond), cp.LogDir, cp.KubeconfigPath)
	stopped := false
	defer func() {
		if !stopped {
			_ = cp.Stop()
		}
	}()

	if want := []string{"node-1", "node-2", "node-3"}; !slices.Equal(cp.Nodes, want) {
		t.Fatalf("nodes = %v, want %v", cp.Nodes, want)
	}
	var nodes corev1.NodeList
	if err := cp.Client.List(ctx, &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 3 {
		t.Fatalf("got %d nodes, want 3", len(nodes.Items))
	}
	for _, n := range nodes.Items {
		if !nodeReady(&n) || len(n.Spec.Taints) != 0 {
			t.Fatalf("node %s: ready=%v taints=%v", n.Name, nodeReady(&n), n.Spec.Taints)
		}
	}

	if _, err := cp.CreateNamespace(ctx, "harness"); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "harness-check"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "harness-check", Namespace: "harness"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					Containers:                   []corev1.Container{{Name: "main", Image: "example.invalid/never-pulled:1"}},
				},
			},
		},
	}
	podStart := time.Now()
	if err := cp.Client.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	var running *corev1.Pod
	deadline := time.Now().Add(60 * time.Second)
	for running == nil {
		var pods corev1.PodList
		if err := cp.Client.List(ctx, &pods, client.InNamespace("harness"), client.MatchingLabels(labels)); err != nil {
			t.Fatal(err)
		}
		for i := range pods.Items {
			if pods.Items[i].Status.Phase == corev1.PodRunning {
				running = &pods.Items[i]
			}
		}
		if running != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Running pod after 60s; pods: %+v; children: %v", podSummaries(pods.Items), cp.Alive())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("deployment pod %s Running on %s after %s", running.Name, running.Spec.NodeName, time.Since(podStart).Round(time.Millisecond))
	if !slices.Contains(cp.Nodes, running.Spec.NodeName) {
		t.Fatalf("pod runs on %q, not a kwok node %v", running.Spec.NodeName, cp.Nodes)
	}
	if running.Spec.ServiceAccountName != "default" {
		t.Fatalf("ServiceAccount admission did not default serviceAccountName: %q", running.Spec.ServiceAccountName)
	}
	if err := cp.Alive(); err != nil {
		t.Fatal(err)
	}

	// Every process we and envtest started must be gone after Stop.
	during := childPIDs(t)
	if runtime.GOOS == "linux" && len(during)-len(before) < 5 {
		t.Fatalf("expected at least 5 child processes while running, saw %v", during)
	}
	ours := cp.PIDs()
	for _, name := range []string{"kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager", "kwok"} {
		if runtime.GOOS == "linux" && ours[name] <= 0 {
			t.Errorf("PIDs() has no %s: %v", name, ours)
		}
	}
	logDir := cp.LogDir
	stopStart := time.Now()
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	t.Logf("stopped in %s", time.Since(stopStart).Round(time.Millisecond))
	for name, pid := range ours {
		if processExists(pid) {
			t.Errorf("%s (pid %d) still exists after Stop", name, pid)
		}
	}
	if left := childPIDs(t); len(left) > len(before) {
		t.Errorf("child processes left after Stop: %v", left)
	}
	if _, err := os.Stat(logDir); !os.IsNotExist(err) {
		t.Errorf("LogDir %s not removed (KeepLogs is false): %v", logDir, err)
	}
}

// TestFindBinariesNamesMissingOnes checks the error a fresh checkout gets.
func TestFindBinariesNamesMissingOnes(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("KUBEBUILDER_ASSETS", empty)
	t.Chdir(empty) // no go.mod above a temp dir, so the repo's bin/ is not found either
	_, err := FindBinaries()
	if err == nil {
		t.Fatal("expected an error")
	}
	for _, want := range []string{"kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager", "kwok", "make controlplane"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A cheap apiserver-only run needs only two binaries.
	_, err = findBinaries(false, false, false)
	if err == nil || strings.Contains(err.Error(), "kwok") {
		t.Errorf("apiserver-only lookup: %v", err)
	}
}

// TestKwokStageFilesSkipsKustomizations: build.sh copies kustomization.yaml files next to the
// stages; kwok must only get Stage configs.
func TestKwokStageFilesSkipsKustomizations(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("pod-kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
	write("pod-pod-ready.yaml", "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\n")
	write("node-node-initialize.yaml", "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\n")
	got, err := kwokStageFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "node-node-initialize.yaml"), filepath.Join(dir, "pod-pod-ready.yaml")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func podSummaries(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name+" node="+p.Spec.NodeName+" phase="+string(p.Status.Phase))
	}
	return out
}

// childPIDs lists the direct children of this test process (zombies included: an unreaped child
// is a leak too). Linux only; elsewhere it returns nil and the PID checks carry the test.
func childPIDs(t *testing.T) []string {
	t.Helper()
	if runtime.GOOS != "linux" {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) >= 2 && fields[1] == self {
			out = append(out, e.Name()+s[strings.IndexByte(s, '('):i+1])
		}
	}
	return out
}

func processExists(pid int) bool {
	if runtime.GOOS == "linux" {
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
		return err == nil
	}
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(syscall.Signal(0)) == nil
}

// TestAPIServerRestart: kube-apiserver stops and starts again on the same port, certificates
// and etcd; objects and the clients made before survive, twice over, and Stop leaves no
// process behind.
func TestAPIServerRestart(t *testing.T) {
	requireBinaries(t)
	if runtime.GOOS != "linux" {
		t.Skip("StopAPIServer reads the command line from /proc")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	before := childPIDs(t)
	cp, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = cp.Stop()
		}
	}()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "survives", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	if err := cp.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if err := cp.StartAPIServer(ctx); err == nil {
		t.Fatal("StartAPIServer on a running kube-apiserver must refuse")
	}
	pids := []int{cp.PIDs()["kube-apiserver"]}
	for round := 1; round <= 2; round++ {
		began := time.Now()
		if err := cp.StopAPIServer(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		stoppedIn := time.Since(began)
		if processExists(pids[len(pids)-1]) {
			t.Fatalf("round %d: kube-apiserver pid %d still exists after StopAPIServer", round, pids[len(pids)-1])
		}
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); err == nil {
			t.Fatalf("round %d: a read succeeded while kube-apiserver was stopped", round)
		}
		if err := cp.StopAPIServer(); err == nil {
			t.Fatalf("round %d: StopAPIServer twice must refuse", round)
		}
		began = time.Now()
		if err := cp.StartAPIServer(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: stopped in %s, ready again in %s", round, stoppedIn.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
		var got corev1.ConfigMap
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(cm), &got); err != nil || got.Data["k"] != "v" {
			t.Fatalf("round %d: after the restart: %v %v", round, err, got.Data)
		}
		pid := cp.PIDs()["kube-apiserver"]
		if pid <= 0 || pid == pids[len(pids)-1] {
			t.Fatalf("round %d: PIDs() gives kube-apiserver pid %d, previous %v", round, pid, pids)
		}
		pids = append(pids, pid)
		if err := cp.Alive(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for _, pid := range pids {
		if processExists(pid) {
			t.Errorf("kube-apiserver pid %d still exists after Stop", pid)
		}
	}
	if left := childPIDs(t); len(left) > len(before) {
		t.Errorf("child processes left after Stop: %v", left)
	}
}
