package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	wh "github.com/octopus-agent-tools/workspace-webhook/webhook"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/agent"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/explain"
	"github.com/octopus-agent-tools/workspace-webhook/webhook/workspace"
)

const explainUsage = `Usage: workspace-webhook explain -f FILE [flags]

Prints what the webhook would do with each Pod or PersistentVolumeClaim in FILE ("-": stdin):
the decision, its reason code and message, warnings, and the admitted object. It runs the
webhook's own decision code. Facts come from a cluster with --kubeconfig or --context, else
from the flags below (no cluster needed).

`

// runExplain is the explain subcommand; it returns the exit status (0, 1 on an error, 2 on
// bad usage; --fail-on-deny makes a refusal 3).
func runExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, explainUsage); fs.PrintDefaults() }
	file := fs.String("f", "", "Manifest to explain (YAML or JSON, several documents allowed; - for stdin).")
	output := fs.String("o", "text", "Output: text or json.")
	showObject := fs.Bool("show-object", true, "Print the admitted object after each decision (text output).")
	failOnDeny := fs.Bool("fail-on-deny", false, "Exit 3 when any object would be refused.")
	kubeconfig := fs.String("kubeconfig", "", "Read the facts from this cluster (default: offline, from the flags below).")
	kubeContext := fs.String("context", "", "Kubeconfig context to read the facts from (implies a cluster).")
	cfg := workspace.DefaultConfig()
	fs.StringVar(&cfg.MountPath, "workspace-path", cfg.MountPath, "Path at which script containers expect the workspace.")
	scriptLabel := fs.String("script-pod-label", "octopus.com/scriptTicketId", "Label key that marks script pods.")
	off := explain.Offline{MountPath: cfg.MountPath}
	fs.StringVar(&off.Claim, "claim", "", "Offline: the agent's workspace claim (default: the one the pod names).")
	mode := fs.String("access-mode", string(corev1.ReadWriteOnce), "Offline: the claim's access mode.")
	fs.BoolVar(&off.NoClaim, "no-claim", false, "Offline: the workspace claim does not exist.")
	fs.BoolVar(&off.NoTentacle, "no-tentacle", false, "Offline: no Tentacle pod of the agent exists.")
	fs.StringVar(&off.Node, "node", "", "Offline: the node holding the workspace volume (empty: none yet).")
	fs.StringVar(&off.NodeState, "node-state", "ready", "Offline: that node's state: "+strings.Join(explain.NodeStates, ", ")+".")
	nodeLabels := fs.String("node-labels", "", "Offline: extra node labels, k=v,k=v.")
	nodeTaints := fs.String("node-taints", "", "Offline: node taints, key[=value]:Effect,...")
	provisioner := fs.String("provisioner", "", "Offline, claims: the provisioner of the claim's StorageClass.")
	className := fs.String("class", "", "Offline, claims: the name of that StorageClass (default: the claim's own, else \"default\").")
	classParams := fs.String("class-params", "", "Offline, claims: the class's parameters, k=v,k=v.")
	nodes := fs.Int("nodes", 3, "Offline, claims: how many nodes the cluster has.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *file == "" || fs.NArg() > 0 || (*output != "text" && *output != "json") {
		fs.Usage()
		return 2
	}
	off.AccessMode = corev1.PersistentVolumeAccessMode(*mode)
	off.MountPath = cfg.MountPath
	var err error
	if off.NodeLabels, err = keyValues(*nodeLabels); err == nil {
		off.NodeTaints, err = taints(*nodeTaints)
	}
	if err == nil {
		err = off.Validate()
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	docs, err := readDocuments(*file, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}

	e := &explain.Explainer{Config: cfg, ScriptPodLabel: *scriptLabel}
	if *kubeconfig != "" || *kubeContext != "" {
		live, err := liveClient(*kubeconfig, *kubeContext)
		if err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		e.Facts = &agent.Finder{Cache: live, LegacyPods: live, Live: live, MountPath: cfg.MountPath}
		e.Claims = &wh.ClaimJudge{Cache: live, Live: live}
	} else {
		e.Facts = &off
		classes := &explain.Classes{Nodes: *nodes}
		if *provisioner != "" {
			params, err := keyValues(*classParams)
			if err != nil {
				fmt.Fprintln(stderr, "error:", err)
				return 2
			}
			classes.Items = []storagev1.StorageClass{{ObjectMeta: metav1.ObjectMeta{Name: *className}, Provisioner: *provisioner, Parameters: params}}
		}
		classes = classesFor(classes, *className, docs)
		e.Claims = &wh.ClaimJudge{Cache: classes, Live: classes}
	}

	ctx := context.Background()
	var reports []explain.Report
	for _, doc := range docs {
		var meta metav1.TypeMeta
		if err := json.Unmarshal(doc, &meta); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		var rep explain.Report
		switch meta.Kind {
		case "Pod":
			rep, err = e.Pod(ctx, doc)
		case "PersistentVolumeClaim":
			rep, err = e.Claim(ctx, doc)
		default:
			err = fmt.Errorf("kind %q: explain takes Pods and PersistentVolumeClaims", meta.Kind)
		}
		if err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		reports = append(reports, rep)
	}
	if err := printReports(stdout, reports, *output, *showObject); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if *failOnDeny {
		for _, r := range reports {
			if r.Decision == "denied" || (r.Validation != nil && r.Validation.Decision == "denied") {
				return 3
			}
		}
	}
	return 0
}

// classesFor names the stated class after the claim's own class when --class is not given,
// so that "--provisioner ebs.csi.aws.com" judges whatever class the claim names.
func classesFor(c *explain.Classes, name string, docs [][]byte) *explain.Classes {
	if len(c.Items) != 1 || name != "" {
		return c
	}
	c.Items[0].Name = "default"
	c.Items[0].Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
	for _, d := range docs {
		var pvc corev1.PersistentVolumeClaim
		if json.Unmarshal(d, &pvc) == nil && pvc.Kind == "PersistentVolumeClaim" && pvc.Spec.StorageClassName != nil && *pvc.Spec.StorageClassName != "" {
			c.Items[0].Name = *pvc.Spec.StorageClassName
		}
	}
	return c
}

func liveClient(kubeconfig, kubeContext string) (client.Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return client.New(cfg, client.Options{})
}

// readDocuments splits a YAML or JSON stream into JSON documents, skipping empty ones.
func readDocuments(path string, stdin io.Reader) ([][]byte, error) {
	var in io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var docs [][]byte
	for {
		b, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
		if string(j) != "null" {
			docs = append(docs, j)
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s holds no object", path)
	}
	return docs, nil
}

func printReports(w io.Writer, reports []explain.Report, output string, showObject bool) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		fmt.Fprintf(w, "%s %s (%s)\n  decision: %s\n  reason:   %s\n  message:  %s\n", r.Kind, r.Name, r.Webhook, r.Decision, r.Code, r.Message)
		for _, warn := range r.Warnings {
			fmt.Fprintf(w, "  warning:  %s\n", warn)
		}
		if r.Validation != nil {
			fmt.Fprintf(w, "  final state: %s %s: %s\n", r.Validation.Decision, r.Validation.Code, r.Validation.Message)
		}
		if showObject && r.Admitted != nil {
			y, err := yaml.JSONToYAML(r.Admitted)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  admitted:\n%s", indent(string(y), "    "))
		}
	}
	return nil
}

func indent(s, by string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "")
}

func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func taints(s string) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		kv, effect, ok := strings.Cut(t, ":")
		switch corev1.TaintEffect(effect) {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			ok = false
		}
		if !ok {
			return nil, fmt.Errorf("taint %q: want key[=value]:NoSchedule|PreferNoSchedule|NoExecute", t)
		}
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out, nil
}
