package app

import (
	"crypto/tls"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/octopus-agent-tools/workspace-webhook/webhook/enforcement"
)

func TestOptionsValidateRefusesBadInput(t *testing.T) {
	for args, want := range map[string]string{
		"--tls-min-version=1.1":                      "--tls-min-version must be 1.2 or 1.3",
		"--workspace-path=octopus":                   "--workspace-path must be an absolute path",
		"--workspace-path=/octopus/":                 `did you mean "/octopus"`,
		"--workspace-path=/":                         "--workspace-path must be written plainly",
		"--cert-mode=vault":                          "--cert-mode must be",
		"--cert-mode=self-managed --namespace=":      "--cert-mode=self-managed needs --namespace",
		"--script-pod-label=":                        "--script-pod-label must not be empty",
		"--workspace-volume-name=tentacle-workspace": "--workspace-volume-name must be set and differ",
	} {
		o := DefaultOptions()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(strings.Fields(args)); err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", args, err, want)
		}
	}
}

func TestOptionsTLSVersionAndDNSNames(t *testing.T) {
	o := DefaultOptions()
	if v, _ := o.tlsVersion(); v != tls.VersionTLS13 {
		t.Fatalf("default minimum TLS version %x, want 1.3", v)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--tls-min-version=1.2", "--extra-dns-names= a.example.com, ,b.example.com"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := o.tlsVersion(); v != tls.VersionTLS12 {
		t.Fatalf("--tls-min-version=1.2 gave %x", v)
	}
	if strings.Join(o.ExtraDNSNames, ",") != "a.example.com,b.example.com" {
		t.Fatalf("extra DNS names %q", o.ExtraDNSNames)
	}
	if o.EnableHTTP2 {
		t.Fatal("HTTP/2 must be off by default")
	}
}

func TestOptionsEnforcement(t *testing.T) {
	parse := func(args ...string) (Options, error) {
		o := DefaultOptions()
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.BindFlags(fs)
		return o, fs.Parse(args)
	}
	if o, err := parse(); err != nil || o.Enforcement != enforcement.Enforce {
		t.Fatalf("default: %q, %v; want enforce", o.Enforcement, err)
	}
	if o, err := parse("--enforcement=warn"); err != nil || o.Enforcement != enforcement.Warn || o.Validate() != nil {
		t.Fatalf("--enforcement=warn: %q, %v", o.Enforcement, err)
	}
	if _, err := parse("--enforcement=audit"); err == nil || !strings.Contains(err.Error(), `enforcement mode must be "enforce" or "warn", got "audit"`) {
		t.Fatalf("--enforcement=audit: %v", err)
	}
	o := DefaultOptions()
	o.Enforcement = ""
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--enforcement must be") {
		t.Fatalf("empty mode set in code: %v", err)
	}
}
