// Package certs is the webhook's self-managed certificate mode, for clusters without
// cert-manager. Every replica runs a Manager; they share nothing but one Secret:
//
//	kind: Secret  (type kubernetes.io/tls, in our namespace)
//	  tls.crt, tls.key  serving certificate for the webhook Service's DNS names
//	  ca.crt            trust bundle: the signing CA first, then older CAs still trusted
//	  ca.key            the signing CA's key (any replica may renew)
//
// Each pass (Manager.Ensure, every CheckInterval) plans from the Secret and the clock,
// writes the Secret with Create/Update under optimistic concurrency (the loser re-reads and
// adopts the winner's material), publishes tls.crt/tls.key in CertDir the way kubelet
// publishes a Secret volume (see files.go), and puts ca.crt into the caBundle of every
// webhook of our two webhook configurations. Only Get/Create/Update/Patch by name are used,
// never List or Watch, so RBAC can name the Secret and the configurations.
//
// Renewal happens at 2/3 of a certificate's life by default. A new CA is trusted (in the
// caBundle next to the old one) before it signs anything, and the old CA stays until every
// replica serves the new serving certificate; see plan in renew.go.
//
// Wiring (the webhook server's certwatcher needs the files before it starts, and the
// manager starts webhook servers before other runnables, so run the Manager first):
//
//	cm, err := certs.NewManager(uncachedClient, certs.Options{...CertDir: opts.CertDir})
//	go cm.Start(ctx)
//	if err := cm.WaitReady(ctx); err != nil { ... }
//	mgr.AddReadyzCheck("serving-cert", certs.ServingCertChecker(certDir, "tls.crt", "tls.key", ":9443"))
//	mgr.Start(ctx)
//
// Files:
//   - generate.go:  CA and serving certificate issuance (cert-manager's pki package)
//   - renew.go:     the pure decision: what the Secret should hold now
//   - secret.go:    Secret layout, parsing, and the conflict-safe write
//   - cabundle.go:  caBundle injection into the webhook configurations
//   - files.go:     atomic publication of the serving pair in CertDir
//   - manager.go:   Options, Manager, the loop
//   - readiness.go: readiness check for both certificate modes
package certs
