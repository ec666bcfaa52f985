package storage

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// noProvisioner is the provisioner of classes whose PersistentVolumes an admin creates by hand.
const noProvisioner = "kubernetes.io/no-provisioner"

// inTreeAliases maps in-tree volume plugin names to the CSI drivers that serve them under
// CSI migration (k8s.io/csi-translation-lib/plugins).
var inTreeAliases = map[string]string{
	"kubernetes.io/aws-ebs":         "ebs.csi.aws.com",
	"kubernetes.io/gce-pd":          "pd.csi.storage.gke.io",
	"kubernetes.io/azure-disk":      "disk.csi.azure.com",
	"kubernetes.io/azure-file":      "file.csi.azure.com",
	"kubernetes.io/cinder":          "cinder.csi.openstack.org",
	"kubernetes.io/vsphere-volume":  "csi.vsphere.vmware.com",
	"kubernetes.io/portworx-volume": "pxd.portworx.com",
}

// NormalizeProvisioner returns the CSI driver name that serves provisioner: in-tree plugin names
// map to their CSI drivers; every other name is returned as is (without surrounding space).
func NormalizeProvisioner(provisioner string) string {
	p := strings.TrimSpace(provisioner)
	if csi, ok := inTreeAliases[p]; ok {
		return csi
	}
	return p
}

// query is what a table row decides on.
type query struct {
	provisioner string // as written on the class
	mode        corev1.PersistentVolumeMode
	params      map[string]string
	nodes       int // nodes in the cluster, 0 when unknown
}

// finding is a row's verdict for one query.
type finding struct {
	verdict Verdict
	reason  string
}

// row is one provisioner (or family of provisioner names) of the built-in table.
type row struct {
	names     []string                      // exact names; the first is the CSI driver name
	pattern   string                        // human form of matches, "" for exact names only
	matches   func(provisioner string) bool // extra names beyond names; nil for none
	reference string                        // where the fact was read: repository and file
	decide    func(q query) finding
}

// fromTable answers from the built-in table; false when the provisioner is not in it.
func fromTable(class *storagev1.StorageClass, mode corev1.PersistentVolumeMode, nodes int, base Answer) (Answer, bool) {
	r := lookupRow(class.Provisioner)
	if r == nil {
		return Answer{}, false
	}
	f := r.decide(query{provisioner: NormalizeProvisioner(class.Provisioner), mode: mode, params: class.Parameters, nodes: nodes})
	base.Source, base.Verdict, base.Reason, base.Reference = SourceTable, f.verdict, f.reason, r.reference
	return base, true
}

// lookupRow finds the row for a provisioner: exact names (after in-tree aliasing) first, then patterns.
func lookupRow(provisioner string) *row {
	p := NormalizeProvisioner(provisioner)
	if p == "" {
		return nil
	}
	if r, ok := tableIndex[p]; ok {
		return r
	}
	for i := range builtinTable {
		if m := builtinTable[i].matches; m != nil && m(p) {
			return &builtinTable[i]
		}
	}
	return nil
}

var tableIndex = indexTable(builtinTable)

func indexTable(rows []row) map[string]*row {
	idx := make(map[string]*row, len(rows))
	for i := range rows {
		for _, n := range rows[i].names {
			idx[n] = &rows[i]
		}
	}
	return idx
}

// --- findings ---

func yes(format string, a ...any) finding { return finding{Supported, fmt.Sprintf(format, a...)} }
func no(format string, a ...any) finding  { return finding{Unsupported, fmt.Sprintf(format, a...)} }
func unknown(format string, a ...any) finding {
	return finding{Unknown, fmt.Sprintf(format, a...)}
}

// byMode decides by volume mode alone.
func byMode(fs, block finding) func(query) finding {
	return func(q query) finding {
		if q.mode == corev1.PersistentVolumeBlock {
			return block
		}
		return fs
	}
}

// fileShare is a driver whose volumes are network file systems: RWX on Filesystem, no Block at all.
func fileShare(name, what string) func(query) finding {
	return byMode(
		yes("%s provisions %s, which every node can mount read-write at once", name, what),
		no("%s provisions %s; it has no Block volumes", name, what))
}

// singleNode is a driver whose volumes are only ever read-write on one node.
func singleNode(why string) func(query) finding {
	return func(q query) finding {
		return no("%s %s; it has no ReadWriteMany volumes in any volume mode", q.provisioner, why)
	}
}

// param reads a class parameter, ignoring key case as the cloud drivers do (they lower-case keys);
// an exact match wins over a case-folded one.
func param(params map[string]string, key string) (string, bool) {
	if v, ok := params[key]; ok {
		return strings.TrimSpace(v), true
	}
	found, value := "", ""
	for k, v := range params {
		if strings.EqualFold(k, key) && (found == "" || k < found) {
			found, value = k, v
		}
	}
	return strings.TrimSpace(value), found != ""
}

// --- name patterns ---

// nsPrefixed matches "<namespace>.<suffix>", the names Rook and OpenShift ODF give ceph-csi drivers.
func nsPrefixed(suffix string) func(string) bool {
	return func(p string) bool {
		return len(p) > len(suffix)+1 && strings.HasSuffix(p, "."+suffix)
	}
}

// nfsSubdirName matches "<prefix>/nfs-subdir-external-provisioner", including the Helm chart's
// default "cluster.local/<release>-nfs-subdir-external-provisioner".
func nfsSubdirName(p string) bool {
	i := strings.LastIndex(p, "/")
	return i > 0 && strings.Contains(p[i+1:], "nfs-subdir-external-provisioner")
}
