package app

import (
	"crypto/tls"
	"flag"
	"strings"
	"testing"
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
