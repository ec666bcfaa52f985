package main

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// yamlDiff renders a unified diff (3 lines of context) of two objects as YAML.
func yamlDiff(before, after any) string {
	ops := lineDiff(toLines(before), toLines(after))
	const context = 3
	keep := make([]bool, len(ops))
	for i, op := range ops {
		if op.kind == ' ' {
			continue
		}
		for j := max(0, i-context); j <= min(len(ops)-1, i+context); j++ {
			keep[j] = true
		}
	}
	var out []string
	for i, op := range ops {
		if !keep[i] {
			continue
		}
		if i == 0 || !keep[i-1] {
			out = append(out, "@@")
		}
		out = append(out, fmt.Sprintf("%c %s", op.kind, op.line))
	}
	return strings.Join(out, "\n")
}

func toLines(v any) []string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return []string{"<" + err.Error() + ">"}
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	line string
}

// lineDiff is a longest-common-subsequence diff; pods are a few hundred lines at most.
func lineDiff(a, b []string) []diffOp {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		ops = append(ops, diffOp{'-', a[i]})
	}
	for ; j < len(b); j++ {
		ops = append(ops, diffOp{'+', b[j]})
	}
	return ops
}
