package install

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	"github.com/octopus-agent-tools/workspace-webhook/e2e/controlplane"
	"github.com/octopus-agent-tools/workspace-webhook/manifests"
)

// rendering is one way to install: a kustomization, or the chart with a value set (rendered
// inside the subtest, so a missing helm skips only the chart's).
type rendering struct {
	name string
	objs func(t *testing.T) []*unstructured.Unstructured
}

// renderings are every kustomization and every chart value set.
func renderings() []rendering {
	var out []rendering
	for _, f := range manifests.Flavours {
		out = append(out, rendering{"kustomize/" + f, func(t *testing.T) []*unstructured.Unstructured { return render(t, f, false) }})
	}
	for _, c := range chartCases {
		out = append(out, rendering{"chart/" + c.name, func(t *testing.T) []*unstructured.Unstructured { return renderChart(t, c.namespace, c.flags...) }})
	}
	return out
}

// podSecurityRestricted is the Pod Security library's verdict on a pod template at the
// "restricted" level, latest version ("" when allowed).
func podSecurityRestricted(t *testing.T, tmpl *corev1.PodTemplateSpec) string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	results := evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}, &tmpl.ObjectMeta, &tmpl.Spec)
	if agg := policy.AggregateCheckResults(results); !agg.Allowed {
		return agg.ForbiddenReason() + ": " + agg.ForbiddenDetail()
	}
	return ""
}

// uidRange is a namespace's range as OpenShift assigns it (annotation
// openshift.io/sa.scc.uid-range, e.g. 1000680000/10000); the group range is the same.
type uidRange struct{ min, size int64 }

func (r uidRange) contains(id int64) bool { return id >= r.min && id < r.min+r.size }

// restrictedV2Violations is what OpenShift's restricted-v2 SecurityContextConstraints (the
// default for every authenticated user since OpenShift 4.11) refuses in a pod spec, field by
// field of the SCC: runAsUser MustRunAsRange and fsGroup MustRunAs (the namespace's range; a
// fixed ID outside it is refused, an absent one is assigned), seLinuxContext MustRunAs (the
// namespace's level is assigned; a pod may not choose one), no host namespaces, ports or
// paths, volumes of the listed types only, no privileged container, no privilege escalation,
// requiredDropCapabilities ALL, allowedCapabilities NET_BIND_SERVICE, seccomp runtime/default.
// It is a model of the SCC, not OpenShift's admission plugin (not available here); the tests
// below show it refuses each of those.
func restrictedV2Violations(spec *corev1.PodSpec, ns uidRange) []string {
	var v []string
	id := func(what string, p *int64) {
		if p != nil && !ns.contains(*p) {
			v = append(v, fmt.Sprintf("%s %d outside the namespace range %d/%d", what, *p, ns.min, ns.size))
		}
	}
	seccomp := func(what string, p *corev1.SeccompProfile) {
		if p != nil && p.Type != corev1.SeccompProfileTypeRuntimeDefault {
			v = append(v, what+" seccompProfile "+string(p.Type)+", only runtime/default is allowed")
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		v = append(v, "host namespaces")
	}
	if sc := spec.SecurityContext; sc != nil {
		id("pod runAsUser", sc.RunAsUser)
		id("pod runAsGroup", sc.RunAsGroup)
		id("pod fsGroup", sc.FSGroup)
		if sc.SELinuxOptions != nil {
			v = append(v, "pod seLinuxOptions chosen by the pod")
		}
		seccomp("pod", sc.SeccompProfile)
	}
	allowedVolumes := []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
	for _, vol := range spec.Volumes {
		if kind := volumeKind(vol); !slices.Contains(allowedVolumes, kind) {
			v = append(v, fmt.Sprintf("volume %s of type %s", vol.Name, kind))
		}
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				v = append(v, fmt.Sprintf("container %s hostPort %d", c.Name, p.HostPort))
			}
		}
		sc := c.SecurityContext
		if sc == nil {
			continue
		}
		id("container "+c.Name+" runAsUser", sc.RunAsUser)
		id("container "+c.Name+" runAsGroup", sc.RunAsGroup)
		if sc.SELinuxOptions != nil {
			v = append(v, "container "+c.Name+" seLinuxOptions chosen by the pod")
		}
		seccomp("container "+c.Name, sc.SeccompProfile)
		if ptr.Deref(sc.Privileged, false) {
			v = append(v, "container "+c.Name+" privileged")
		}
		if ptr.Deref(sc.AllowPrivilegeEscalation, false) {
			v = append(v, "container "+c.Name+" allowPrivilegeEscalation")
		}
		if sc.Capabilities != nil {
			for _, add := range sc.Capabilities.Add {
				if add != "NET_BIND_SERVICE" {
					v = append(v, "container "+c.Name+" adds capability "+string(add))
				}
			}
		}
		// requiredDropCapabilities: ALL is added to a container that does not drop it, so
		// not dropping it is no refusal; dropping it is what the pod already does.
	}
	return v
}

// volumeKind is the JSON name of the volume's source (hostPath, emptyDir, ...).
func volumeKind(vol corev1.Volume) string {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&vol.VolumeSource)
	if err != nil || len(u) != 1 {
		return fmt.Sprintf("unknown(%v)", err)
	}
	for k := range u {
		return k
	}
	return ""
}

// OpenShift's restricted-v2 SCC gives each namespace a UID range and refuses a pod that asks for
// a fixed runAsUser or runAsGroup outside it, so every install (each kustomization, the chart
// with every value set) sets no user, group, fsGroup or supplemental group ID anywhere, relies
// on the image's numeric USER for runAsNonRoot, passes Pod Security "restricted", and
// passes the restricted-v2 model with an OpenShift-like namespace range.
func TestPodSpecsRunUnderAnyUID(t *testing.T) {
	openshiftRange := uidRange{1000680000, 10000}
	for _, r := range renderings() {
		t.Run(r.name, func(t *testing.T) {
			var d appsv1.Deployment
			find(t, r.objs(t), "Deployment", "workspace-webhook", &d)
			spec := &d.Spec.Template.Spec
			sc := spec.SecurityContext
			if sc == nil || !ptr.Deref(sc.RunAsNonRoot, false) {
				t.Errorf("runAsNonRoot must be true on the pod: %+v", sc)
			}
			if sc != nil && (sc.RunAsUser != nil || sc.RunAsGroup != nil || sc.FSGroup != nil || len(sc.SupplementalGroups) > 0) {
				t.Errorf("pod securityContext fixes an ID: runAsUser %v, runAsGroup %v, fsGroup %v, supplementalGroups %v",
					ptr.Deref(sc.RunAsUser, -1), ptr.Deref(sc.RunAsGroup, -1), ptr.Deref(sc.FSGroup, -1), sc.SupplementalGroups)
			}
			for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
				if c.SecurityContext != nil && (c.SecurityContext.RunAsUser != nil || c.SecurityContext.RunAsGroup != nil) {
					t.Errorf("container %s fixes runAsUser/runAsGroup", c.Name)
				}
				if c.SecurityContext != nil && c.SecurityContext.RunAsNonRoot != nil && !*c.SecurityContext.RunAsNonRoot {
					t.Errorf("container %s allows root", c.Name)
				}
			}
			if why := podSecurityRestricted(t, &d.Spec.Template); why != "" {
				t.Errorf("fails Pod Security restricted: %s", why)
			}
			if v := restrictedV2Violations(spec, openshiftRange); len(v) > 0 {
				t.Errorf("restricted-v2 would refuse the pod: %v", v)
			}
		})
	}
}

// The restricted-v2 model is not a check that cannot fail: it refuses what the SCC refuses,
// starting with the fixed UID the Deployment used to set.
func TestRestrictedV2ModelRefusesWhatTheSCCRefuses(t *testing.T) {
	var d appsv1.Deployment
	find(t, render(t, "cert-manager", false), "Deployment", "workspace-webhook", &d)
	ns := uidRange{1000680000, 10000}
	if v := restrictedV2Violations(&d.Spec.Template.Spec, ns); len(v) > 0 {
		t.Fatalf("the shipped pod is refused: %v", v)
	}
	for name, change := range map[string]func(s *corev1.PodSpec){
		"runAsUser 65532 (the old Deployment)": func(s *corev1.PodSpec) { s.SecurityContext.RunAsUser = ptr.To[int64](65532) },
		"runAsGroup 65532":                     func(s *corev1.PodSpec) { s.SecurityContext.RunAsGroup = ptr.To[int64](65532) },
		"fsGroup 2000":                         func(s *corev1.PodSpec) { s.SecurityContext.FSGroup = ptr.To[int64](2000) },
		"container runAsUser 1000":             func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.RunAsUser = ptr.To[int64](1000) },
		"seLinuxOptions":                       func(s *corev1.PodSpec) { s.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Level: "s0:c1,c2"} },
		"hostPath volume": func(s *corev1.PodSpec) {
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		},
		"hostNetwork":          func(s *corev1.PodSpec) { s.HostNetwork = true },
		"hostPort":             func(s *corev1.PodSpec) { s.Containers[0].Ports[0].HostPort = 9443 },
		"privilege escalation": func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true) },
		"privileged":           func(s *corev1.PodSpec) { s.Containers[0].SecurityContext.Privileged = ptr.To(true) },
		"capability NET_ADMIN": func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		},
		"seccomp Unconfined":       func(s *corev1.PodSpec) { s.SecurityContext.SeccompProfile.Type = corev1.SeccompProfileTypeUnconfined },
		"UID in range is accepted": nil,
	} {
		t.Run(name, func(t *testing.T) {
			s := d.Spec.Template.Spec.DeepCopy()
			if change == nil {
				s.SecurityContext.RunAsUser = ptr.To(ns.min + 5)
				if v := restrictedV2Violations(s, ns); len(v) > 0 {
					t.Fatalf("a UID inside the namespace range is refused: %v", v)
				}
				return
			}
			change(s)
			if v := restrictedV2Violations(s, ns); len(v) == 0 {
				t.Fatal("admitted")
			}
		})
	}
}

// runAsNonRoot without runAsUser works only if the image's USER is numeric and not 0 (the
// kubelet cannot resolve a user name to check it), in the stage that runs.
func TestDockerfileRunsAsANumericNonRootUser(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	user, err := finalStageUser(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := numericNonRoot(user); err != nil {
		t.Fatal(err)
	}
	t.Logf("USER %s", user)

	for dockerfile, ok := range map[string]bool{
		"FROM a AS build\nUSER 0\nFROM b\nUSER 65532:65532\n": true,
		"FROM a\nUSER 65532\n":                                true,
		"FROM a\nUSER 65532\nFROM b\n":                        false, // the last stage runs as b's user
		"FROM a\nUSER nonroot\n":                              false,
		"FROM a\nUSER 0:0\n":                                  false,
		"FROM a\nUSER 65532:staff\n":                          false,
		"USER 65532\n":                                        false,
	} {
		user, err := finalStageUser([]byte(dockerfile))
		if err == nil {
			err = numericNonRoot(user)
		}
		if (err == nil) != ok {
			t.Errorf("%q: accepted %v, want %v (%v)", dockerfile, err == nil, ok, err)
		}
	}
}

// finalStageUser is the USER in effect in the Dockerfile's last stage.
func finalStageUser(dockerfile []byte) (string, error) {
	user, stages := "", 0
	from, userLine := regexp.MustCompile(`(?i)^FROM\s`), regexp.MustCompile(`(?i)^USER\s+(\S+)`)
	sc := bufio.NewScanner(bytes.NewReader(dockerfile))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case from.MatchString(line):
			user, stages = "", stages+1
		case userLine.MatchString(line):
			user = userLine.FindStringSubmatch(line)[1]
		}
	}
	if stages == 0 {
		return "", fmt.Errorf("no FROM in the Dockerfile")
	}
	if user == "" {
		return "", fmt.Errorf("the last stage sets no USER: the image would run as its base image's user")
	}
	return user, nil
}

// numericNonRoot accepts uid[:gid], both numeric, uid not 0: what runAsNonRoot can verify.
func numericNonRoot(user string) error {
	uid, gid, hasGroup := strings.Cut(user, ":")
	n, err := strconv.ParseUint(uid, 10, 32)
	if err != nil || n == 0 {
		return fmt.Errorf("USER %s: want a numeric, non-zero uid (runAsNonRoot cannot verify a name or 0)", user)
	}
	if _, err := strconv.ParseUint(gid, 10, 32); hasGroup && err != nil {
		return fmt.Errorf("USER %s: want a numeric gid", user)
	}
	return nil
}
