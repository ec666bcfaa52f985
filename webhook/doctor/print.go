package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Print writes the report as a table, json or yaml.
func Print(w io.Writer, r Report, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "yaml":
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "table", "":
	default:
		return fmt.Errorf("output %q: want table, json or yaml", output)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORAGECLASS\tPROVISIONER\tDEFAULT\tBINDING\tREADWRITEMANY\tSOURCE")
	for _, c := range r.Classes {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", c.Name, c.Provisioner, c.Default, c.BindingMode, c.ReadWriteMany, c.Source)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NAMESPACE\tRELEASE\tCHART\tTENTACLE\tCLAIM\tACCESS\tCLASS\tMODE\tNODE\tSCRIPT PODS")
	for _, a := range r.Agents {
		chart := a.ChartVersion
		if a.Name != "" && a.Name != "octopus-agent" {
			chart += " (" + a.Name + ")"
		}
		if a.Worker {
			chart += " worker"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Namespace, a.Release, chart, a.TentacleVersion, a.Claim,
			strings.Join(a.AccessModes, ","), dash(a.StorageClass), a.Mode, dash(a.Node), scriptPods(a.ScriptPods))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "No problems found.")
		return nil
	}
	fmt.Fprintf(w, "%d problem(s):\n", len(r.Problems))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "- [%s] %s: %s\n  fix: %s\n", p.Severity, p.Object, p.Problem, p.Fix)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func scriptPods(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var nodes []string
	for n := range m {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var parts []string
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%d on %s", m[n], dash(n)))
	}
	return strings.Join(parts, ", ")
}
