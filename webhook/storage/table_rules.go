package storage

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Rules for table rows whose answer depends on StorageClass parameters. Each returns the
// verdict for one volume mode with a reason that names the parameter it decided on.

func isBlock(q query) bool { return q.mode == corev1.PersistentVolumeBlock }

// azureDisk: shared disks (maxShares >= 2) serve ReadWriteMany, and only as raw Block devices.
func azureDisk(q query) finding {
	if !isBlock(q) {
		return no("disk.csi.azure.com attaches an Azure managed disk with a single-node file system: " +
			"\"mountVolume is not supported for access mode: MULTI_NODE_MULTI_WRITER\"; ReadWriteMany exists only for Block " +
			"volumes on shared disks (parameter maxShares >= 2)")
	}
	raw, ok := param(q.params, "maxShares")
	if !ok {
		return no("disk.csi.azure.com attaches a disk to one node unless the class sets maxShares >= 2 (shared disk); this class does not set it")
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return no("disk.csi.azure.com rejects this class: parameter maxShares %q is not a whole number", raw)
	}
	if n < 2 {
		return no("disk.csi.azure.com attaches a disk with maxShares=%d to one node; shared Block volumes need maxShares >= 2", n)
	}
	return yes("disk.csi.azure.com provisions shared disks (maxShares=%d) that attach to up to %d nodes as raw Block devices", n, n)
}

// awsEBS: Multi-Attach exists only for io2 volumes in Block mode.
func awsEBS(q query) finding {
	if !isBlock(q) {
		return no("ebs.csi.aws.com attaches an EBS volume to one node at a time; ReadWriteMany only exists for Block volumes on io2 Multi-Attach")
	}
	t, ok := param(q.params, "type")
	if strings.EqualFold(t, "io2") {
		return yes("ebs.csi.aws.com attaches io2 volumes to several nodes with EBS Multi-Attach (Block only)")
	}
	if !ok || t == "" {
		t = "not set (driver default gp3)"
	}
	return no("ebs.csi.aws.com supports Multi-Attach only for io2 volumes; this class's volume type is %s", t)
}

// gcePD: multi-writer exists only for Hyperdisk Balanced in Block mode.
func gcePD(q query) finding {
	if !isBlock(q) {
		return no("pd.csi.storage.gke.io attaches a persistent disk read-write to one node: \"VolumeCapabilities is invalid: " +
			"specified multi writer with mount access type\"; ReadWriteMany exists only for Block volumes on hyperdisk-balanced")
	}
	t, ok := param(q.params, "type")
	if strings.HasPrefix(strings.ToLower(t), "hyperdisk-balanced") {
		return yes("pd.csi.storage.gke.io attaches %s disks to several nodes in multi-writer mode (Block only)", t)
	}
	if !ok || t == "" {
		t = "not set (driver default pd-standard)"
	}
	return no("pd.csi.storage.gke.io supports multi-writer only on hyperdisk-balanced disks; this class's disk type is %s", t)
}

// longhorn: Filesystem RWX through an NFS share-manager; Block RWX only for migratable volumes.
func longhorn(q query) finding {
	raw, set := param(q.params, "migratable")
	migratable, err := strconv.ParseBool(raw)
	if set && err != nil {
		return unknown("driver.longhorn.io: parameter migratable %q is not a boolean", raw)
	}
	if isBlock(q) {
		if migratable {
			return yes("driver.longhorn.io attaches migratable volumes (migratable: \"true\") to two nodes at once as Block devices")
		}
		return no("driver.longhorn.io serves ReadWriteMany Block volumes only with parameter migratable: \"true\"; this class is not migratable")
	}
	if migratable {
		return unknown("driver.longhorn.io: this class is migratable (meant for Block live migration); whether it also serves " +
			"ReadWriteMany file systems through a share-manager is not established")
	}
	return yes("driver.longhorn.io serves ReadWriteMany file systems over NFSv4 from a share-manager pod")
}

// portworx: sharedv4 (NFS) for Filesystem; shared raw Block except on NFS- or file-backed classes.
func portworx(q query) finding {
	if !isBlock(q) {
		return yes("pxd.portworx.com turns a ReadWriteMany claim into a sharedv4 (NFS-exported) volume")
	}
	if b, _ := param(q.params, "backend"); b == "pure_fa_file" {
		return no("pxd.portworx.com with backend pure_fa_file provisions FlashArray file systems; it has no Block volumes")
	}
	if opts, _ := param(q.params, "sharedv4_mount_options"); hasAll(strings.Split(opts, ","), "vers=3.0", "nolock") {
		return no("pxd.portworx.com classes with NFSv3 sharedv4_mount_options serve shared file systems only, not Block")
	}
	return yes("pxd.portworx.com serves shared raw Block volumes (KubeVirt CDI capability table)")
}

// vsphere: ReadWriteMany is a file volume on vSAN File Services. A class whose fstype is nfs/nfs4
// is built for that; any other class depends on vCenter configuration we cannot see.
func vsphere(q query) finding {
	if isBlock(q) {
		return no("csi.vsphere.vmware.com serves ReadWriteMany only as file volumes (Filesystem); its Block volumes are single-access")
	}
	fs, ok := param(q.params, "csi.storage.k8s.io/fstype")
	if !ok {
		fs, _ = param(q.params, "fstype")
	}
	if strings.HasPrefix(strings.ToLower(fs), "nfs") {
		return yes("csi.vsphere.vmware.com serves ReadWriteMany as vSAN File Services file volumes, and this class is set up for them (fstype %s)", fs)
	}
	return unknown("csi.vsphere.vmware.com serves ReadWriteMany only as file volumes, which need vSAN File Services enabled in vCenter; " +
		"the class does not show it (no nfs4 fstype)")
}

// trident: the backend type chosen by the class decides (ontap-nas* file, ontap-san* block).
func trident(q query) finding {
	bt, _ := param(q.params, "backendType")
	nas, san := strings.HasPrefix(bt, "ontap-nas"), strings.HasPrefix(bt, "ontap-san")
	switch {
	case nas && !isBlock(q):
		return yes("csi.trident.netapp.io with backendType %s provisions ONTAP NFS volumes that every node can mount", bt)
	case nas:
		return no("csi.trident.netapp.io with backendType %s provisions NFS volumes; it has no Block volumes", bt)
	case san && isBlock(q):
		return yes("csi.trident.netapp.io with backendType %s provisions iSCSI/NVMe LUNs that several nodes can attach as Block devices", bt)
	case san:
		return no("csi.trident.netapp.io with backendType %s provisions LUNs with a single-node file system (ReadWriteOnce only)", bt)
	case bt == "":
		return unknown("csi.trident.netapp.io: the class does not set backendType, so the backend (NAS or SAN) is not known")
	}
	return unknown("csi.trident.netapp.io: backendType %s is not in the built-in table", bt)
}

// alibabaDisk: multi-attach disks serve ReadWriteMany, only as Block and only with multiAttach set.
func alibabaDisk(q query) finding {
	if !isBlock(q) {
		return no("diskplugin.csi.alibabacloud.com: \"multi-node writing is only supported for block volume\"")
	}
	switch v, _ := param(q.params, "multiAttach"); strings.ToLower(v) {
	case "true", "enabled":
		return yes("diskplugin.csi.alibabacloud.com attaches multi-attach disks (multiAttach: %q) to several nodes as Block devices", v)
	}
	return no("diskplugin.csi.alibabacloud.com needs parameter multiAttach: \"true\" for ReadWriteMany Block volumes; this class does not set it")
}

func hasAll(list []string, want ...string) bool {
	have := map[string]bool{}
	for _, s := range list {
		have[strings.TrimSpace(s)] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// awsEFS: EFS file systems serve ReadWriteMany, but dynamic provisioning needs the class
// parameter provisioningMode; without it CreateVolume fails ("Missing provisioningMode
// parameter") and a claim that no pre-created volume matches stays Pending. A claim of such a
// class may still bind to a static EFS volume of the class, so this is Unknown (a warning, or
// a refusal under --deny-unknown-capability), not Unsupported; Bound volumes of the class
// settle it as evidence.
func awsEFS(q query) finding {
	if isBlock(q) {
		return no("efs.csi.aws.com provisions Amazon EFS file systems (NFSv4); it has no Block volumes")
	}
	mode, _ := param(q.params, "provisioningMode")
	switch strings.ToLower(mode) {
	case "efs-ap", "s3files-ap":
		return yes("efs.csi.aws.com provisions access points (provisioningMode %s) on Amazon EFS file systems (NFSv4), which every node can mount read-write at once", mode)
	case "":
		return unknown("efs.csi.aws.com provisions nothing for this class: it sets no parameter provisioningMode, so CreateVolume fails with \"Missing provisioningMode parameter\" " +
			"and the claim stays Pending unless a pre-created volume of the class matches it; set provisioningMode: efs-ap on the class, or name the volume in spec.volumeName")
	default:
		return no("efs.csi.aws.com rejects provisioningMode %q: only access-point provisioning (efs-ap, or s3files-ap from driver v3.0.0) is supported, so the claim would stay Pending", mode)
	}
}

// minikubeHostPath: a hostPath directory on the node where minikube's provisioner runs, with
// the claim's access modes copied and no node affinity. One node: every pod shares it. More
// nodes: pods elsewhere silently see another, empty directory, which is worse than Pending.
func minikubeHostPath(q query) finding {
	switch {
	case isBlock(q):
		return no("k8s.io/minikube-hostpath creates hostPath directories; it has no Block volumes")
	case q.nodes == 1:
		return yes("k8s.io/minikube-hostpath creates a hostPath directory on the cluster's only node, so every pod shares it")
	case q.nodes > 1:
		return no("k8s.io/minikube-hostpath accepts ReadWriteMany but creates a hostPath directory on one node; this cluster has %d nodes, "+
			"so script pods on the others would each see a different, empty directory", q.nodes)
	default:
		return unknown("k8s.io/minikube-hostpath serves ReadWriteMany only on a one-node cluster, and the number of nodes is not known")
	}
}

// cinder: the driver registers only SINGLE_NODE_WRITER. RWX Block volumes attach to several
// instances only with a multiattach volume type, which the class's parameters cannot show.
func cinder(q query) finding {
	if !isBlock(q) {
		return no("cinder.csi.openstack.org attaches an OpenStack Cinder volume to one instance at a time; ReadWriteMany exists only for Block volumes of a multiattach volume type")
	}
	t, _ := param(q.params, "type")
	if t == "" {
		t = "not set (the cloud's default volume type)"
	}
	return unknown("cinder.csi.openstack.org serves ReadWriteMany Block volumes only when the volume type is multiattach (Cinder: multiattach=\"<is> True\"); "+
		"this class's type is %s, which the class cannot tell; declare the class with annotation %s if it is", t, AnnotationAccessModesBlock)
}
