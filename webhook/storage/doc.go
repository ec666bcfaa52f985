// Package storage knows which StorageClasses can serve ReadWriteMany. It is pure: the only I/O
// is reading the admin's override file (overrides.go, watcher.go). Kubernetes records no
// access-mode capability on a StorageClass or CSIDriver, and a ReadWriteMany claim on a class
// that cannot serve it is accepted and then stays Pending for ever, so the validating webhook
// asks this package first.
//
// # The question and the answer
//
//	a := storage.Judge{Overrides: watcher.Current()}.ReadWriteMany(class, mode, evidence)
//
// a.Verdict is Supported, Unsupported or Unknown; a.Source says which source decided; a.Reason is
// one human sentence and a.Reference where the fact comes from (driver repository and file,
// annotation, override entry or PV names), so a denial can cite both. a.Notes carries what an
// auditor should also see: malformed annotations that were skipped, override entries that matched
// without declaring the volume mode, in-tree aliasing, and cluster evidence that contradicts an
// Unsupported answer. An empty volume mode means Filesystem; a nil class gives Unknown.
//
// # Precedence (first source with a definite answer wins)
//
//  1. StorageClassAnnotation: the admin's declaration on the class, a JSON list of access modes:
//     workspace-webhook.io/supported-access-modes: '["ReadWriteOnce","ReadWriteMany"]'
//     For volumeMode Block, workspace-webhook.io/supported-access-modes-block is read first; the
//     plain annotation covers both modes when the -block one is absent. KubeSphere's
//     storageclass.kubesphere.io/supported-access-modes (same format) is read after ours. A
//     malformed value (not a JSON list of strings, an empty list, an unknown mode name) is skipped
//     with a note, and the next source answers.
//  2. OverrideFile: the admin's YAML file (schema below).
//  3. BuiltInTable: every provisioner of the team's storage-capabilities reference (table_rows.go),
//     with in-tree aliases (kubernetes.io/aws-ebs is ebs.csi.aws.com, ... see NormalizeProvisioner),
//     name patterns (<ns>.cephfs.csi.ceph.com, <ns>.rbd.csi.ceph.com, */nfs-subdir-external-provisioner)
//     and rules on class parameters (table_rules.go): Azure Disk maxShares >= 2, EBS type io2, GCE PD
//     type hyperdisk-balanced*, Longhorn migratable, Trident backendType, vSphere fstype nfs4,
//     Alibaba disk multiAttach, Portworx backend. A row can answer Unknown ("depends").
//  4. ClusterEvidence: consulted only when the table has no row or its row says Unknown. A Bound
//     PersistentVolume of the class with ReadWriteMany in the same volume mode proves support. A
//     kubernetes.io/no-provisioner class serves what its static PVs declare: Supported when an
//     Available PV offers ReadWriteMany in that mode, Unsupported when PVs exist and none offers
//     it, Unknown when the only such PVs are not Available or when there are no PVs.
//  5. None: Unknown, asking the admin to declare the class.
//
// Evidence never overrides an admin's declaration, and it does not upgrade a table "Unsupported"
// either: the table's negative rows describe what the driver refuses to provision, and a Bound RWX
// volume of such a class is almost always a hand-made PV carrying the class name. Such a
// contradiction is reported in Notes instead, and the admin settles it with the annotation.
//
// # Override file
//
// Strict YAML (unknown fields, duplicate keys and several documents are errors; errors name the
// entry and line). An empty file is an error, so a truncated write never clears the overrides:
//
//	overrides:
//	  - provisioner: "*.cephfs.csi.ceph.com"   # exact name, or a path.Match pattern (* does not cross "/")
//	    readWriteMany:
//	      filesystem: true                      # true | false | omitted (no opinion: ask the next source)
//	      block: false
//	    reason: "Our Ceph cluster serves CephFS to every node."  # optional, quoted in answers
//	  - provisioner: example.com/nas
//	    readWriteMany: {filesystem: true}
//
// At least one of filesystem and block must be set; a provisioner may appear once. For a class,
// exact entries (the provisioner as written, then its in-tree alias's CSI name) come before
// patterns, patterns in file order, and the first entry that declares the asked volume mode
// decides. Write 'overrides: []' for none.
//
// OverrideWatcher polls the file (content hash) and swaps in new content only when it validates;
// on a bad or missing file the last good overrides stay in force and the error goes to OnError.
//
// # Claims
//
// ResolveClassName (claim.go) finds the class a claim gets as Kubernetes would, including the
// default class when several are marked default; CollectEvidence builds Evidence from PVs.
package storage
