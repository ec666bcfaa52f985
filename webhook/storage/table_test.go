package storage

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const (
	S = Supported
	U = Unsupported
	K = Unknown
)

// TestTableRows covers every provisioner name of the reference (including in-tree names and
// patterns) in both volume modes, with the class parameters that change the answer.
func TestTableRows(t *testing.T) {
	tests := []struct {
		provisioner string
		params      []string
		fs, block   Verdict
	}{
		{"file.csi.azure.com", nil, S, U},
		{"kubernetes.io/azure-file", nil, S, U},
		{"disk.csi.azure.com", nil, U, U},
		{"disk.csi.azure.com", []string{"maxShares", "1"}, U, U},
		{"disk.csi.azure.com", []string{"maxShares", "2"}, U, S},
		{"disk.csi.azure.com", []string{"maxshares", "3"}, U, S}, // the driver lower-cases keys
		{"disk.csi.azure.com", []string{"maxShares", "two"}, U, U},
		{"kubernetes.io/azure-disk", []string{"maxShares", "2"}, U, S},
		{"efs.csi.aws.com", nil, K, U}, // no provisioningMode: CreateVolume fails
		{"efs.csi.aws.com", []string{"provisioningMode", "efs-ap"}, S, U},
		{"efs.csi.aws.com", []string{"provisioningMode", "s3files-ap"}, S, U},
		{"efs.csi.aws.com", []string{"provisioningMode", "efs-fs"}, U, U},
		{"ebs.csi.aws.com", nil, U, U},
		{"ebs.csi.aws.com", []string{"type", "gp3"}, U, U},
		{"ebs.csi.aws.com", []string{"type", "io1"}, U, U},
		{"ebs.csi.aws.com", []string{"type", "io2"}, U, S},
		{"ebs.csi.aws.com", []string{"Type", "io2"}, U, S},
		{"kubernetes.io/aws-ebs", []string{"type", "io2"}, U, S},
		{"kubernetes.io/aws-ebs", []string{"type", "gp2"}, U, U},
		{"filestore.csi.storage.gke.io", nil, S, U},
		{"pd.csi.storage.gke.io", nil, U, U},
		{"pd.csi.storage.gke.io", []string{"type", "pd-ssd"}, U, U},
		{"pd.csi.storage.gke.io", []string{"type", "hyperdisk-balanced"}, U, S},
		{"pd.csi.storage.gke.io", []string{"type", "hyperdisk-balanced-high-availability"}, U, S},
		{"pd.csi.storage.gke.io", []string{"type", "hyperdisk-extreme"}, U, U},
		{"kubernetes.io/gce-pd", []string{"type", "hyperdisk-balanced"}, U, S},
		{"nfs.csi.k8s.io", nil, S, U},
		{"k8s-sigs.io/nfs-subdir-external-provisioner", nil, S, U},
		{"cluster.local/nfs-subdir-external-provisioner", nil, S, U},
		{"cluster.local/my-nfs-nfs-subdir-external-provisioner", nil, S, U},
		{"example.com/nfs-subdir-external-provisioner", nil, S, U},
		{"smb.csi.k8s.io", nil, S, U},
		{"cephfs.csi.ceph.com", nil, S, U},
		{"rook-ceph.cephfs.csi.ceph.com", nil, S, U},
		{"openshift-storage.cephfs.csi.ceph.com", nil, S, U},
		{"rbd.csi.ceph.com", nil, U, S},
		{"rook-ceph.rbd.csi.ceph.com", nil, U, S},
		{"openshift-storage.rbd.csi.ceph.com", nil, U, S},
		{"driver.longhorn.io", nil, S, U},
		{"driver.longhorn.io", []string{"migratable", "false"}, S, U},
		{"driver.longhorn.io", []string{"migratable", "true"}, K, S},
		{"driver.longhorn.io", []string{"migratable", "perhaps"}, K, K},
		{"rancher.io/local-path", nil, U, U},
		{"k8s.io/minikube-hostpath", nil, K, U}, // node count unknown here: TestMinikubeHostPathByNodeCount
		{"kubernetes.io/no-provisioner", nil, K, K},
		{"openebs.io/local", nil, U, U},
		{"zfs.csi.openebs.io", nil, U, U},
		{"local.csi.openebs.io", nil, U, U},
		{"jiva.csi.openebs.io", nil, U, U},
		{"cstor.csi.openebs.io", nil, U, U},
		{"io.openebs.csi-mayastor", nil, U, U},
		{"pxd.portworx.com", nil, S, S},
		{"pxd.portworx.com", []string{"backend", "pure_fa_file"}, S, U},
		{"pxd.portworx.com", []string{"sharedv4_mount_options", "vers=3.0,nolock"}, S, U},
		{"kubernetes.io/portworx-volume", nil, S, S},
		{"csi.vsphere.vmware.com", nil, K, U},
		{"csi.vsphere.vmware.com", []string{"storagepolicyname", "vSAN Default Storage Policy"}, K, U},
		{"csi.vsphere.vmware.com", []string{"csi.storage.k8s.io/fstype", "nfs4"}, S, U},
		{"csi.vsphere.vmware.com", []string{"csi.storage.k8s.io/fstype", "ext4"}, K, U},
		{"kubernetes.io/vsphere-volume", []string{"fstype", "nfs4"}, S, U},
		{"topolvm.io", nil, U, U},
		{"topolvm.cybozu.com", nil, U, U},
		{"csi.hetzner.cloud", nil, U, U},
		{"dobs.csi.digitalocean.com", nil, U, U},
		{"linodebs.csi.linode.com", nil, U, U},
		{"csi.trident.netapp.io", nil, K, K},
		{"csi.trident.netapp.io", []string{"backendType", "ontap-nas"}, S, U},
		{"csi.trident.netapp.io", []string{"backendType", "ontap-nas-economy"}, S, U},
		{"csi.trident.netapp.io", []string{"backendType", "ontap-nas-flexgroup"}, S, U},
		{"csi.trident.netapp.io", []string{"backendType", "ontap-san"}, U, S},
		{"csi.trident.netapp.io", []string{"backendType", "ontap-san-economy"}, U, S},
		{"csi.trident.netapp.io", []string{"backendType", "solidfire-san"}, K, K},
		{"csi.juicefs.com", nil, S, U},
		{"seaweedfs-csi-driver", nil, S, U},
		{"vpc.block.csi.ibm.io", nil, U, U},
		{"vpc.file.csi.ibm.io", nil, S, U},
		{"blockvolume.csi.oraclecloud.com", nil, U, S},
		{"fss.csi.oraclecloud.com", nil, S, U},
		{"diskplugin.csi.alibabacloud.com", nil, U, U},
		{"diskplugin.csi.alibabacloud.com", []string{"multiAttach", "true"}, U, S},
		{"diskplugin.csi.alibabacloud.com", []string{"multiAttach", "Enabled"}, U, S},
		{"nasplugin.csi.alibabacloud.com", nil, S, U},
		{"cinder.csi.openstack.org", nil, U, K},
		{"cinder.csi.openstack.org", []string{"type", "multiattach"}, U, K},
		{"kubernetes.io/cinder", nil, U, K},
		{"manila.csi.openstack.org", nil, S, U},
	}
	for _, tt := range tests {
		for mode, want := range map[string]Verdict{"Filesystem": tt.fs, "Block": tt.block} {
			name := fmt.Sprintf("%s%v/%s", tt.provisioner, tt.params, mode)
			t.Run(name, func(t *testing.T) {
				class := sc("c", tt.provisioner, tt.params...)
				a, ok := fromTable(class, corev1.PersistentVolumeMode(mode), 0, Answer{})
				if !ok {
					t.Fatalf("%s is not in the table", tt.provisioner)
				}
				if a.Verdict != want || a.Source != SourceTable {
					t.Fatalf("got %s from %s, want %s: %s", a.Verdict, a.Source, want, a.Reason)
				}
				if a.Reason == "" || a.Reference == "" {
					t.Fatalf("row lacks reason or reference: %+v", a)
				}
			})
		}
	}
}

func TestTableRowsAreWellFormed(t *testing.T) {
	seen := map[string]int{}
	for i, r := range builtinTable {
		if len(r.names) == 0 || r.reference == "" || r.decide == nil {
			t.Errorf("row %d is incomplete: %+v", i, r)
		}
		if (r.pattern == "") != (r.matches == nil) {
			t.Errorf("row %d (%s): pattern and matches must come together", i, r.names[0])
		}
		for _, n := range r.names {
			if prev, dup := seen[n]; dup {
				t.Errorf("%s is in rows %d and %d", n, prev, i)
			}
			seen[n] = i
			if lookupRow(n) != &builtinTable[i] {
				t.Errorf("%s does not resolve to its own row", n)
			}
		}
		for _, mode := range []corev1.PersistentVolumeMode{fs, block} {
			f := r.decide(query{provisioner: r.names[0], mode: mode})
			if f.reason == "" || strings.Contains(f.reason, "%!") {
				t.Errorf("%s/%s: bad reason %q", r.names[0], mode, f.reason)
			}
		}
	}
	if len(builtinTable) != 33 {
		t.Errorf("the table has %d rows; the reference has 33", len(builtinTable))
	}
}

func TestTableMisses(t *testing.T) {
	for _, p := range []string{
		"", "   ", "example.com/unknown", "cephfs.csi.ceph.com.evil", ".cephfs.csi.ceph.com",
		"xcephfs.csi.ceph.com", "nfs-subdir-external-provisioner", "/nfs-subdir-external-provisioner",
		"seaweedfs-csi-driver-2", "my.seaweedfs-csi-driver", "kubernetes.io/rbd", "EBS.CSI.AWS.COM",
	} {
		if r := lookupRow(p); r != nil {
			t.Errorf("%q matched row %s", p, r.names[0])
		}
	}
}

func TestNormalizeProvisioner(t *testing.T) {
	for in, want := range map[string]string{
		"kubernetes.io/aws-ebs":         "ebs.csi.aws.com",
		"kubernetes.io/gce-pd":          "pd.csi.storage.gke.io",
		"kubernetes.io/azure-disk":      "disk.csi.azure.com",
		"kubernetes.io/azure-file":      "file.csi.azure.com",
		"kubernetes.io/cinder":          "cinder.csi.openstack.org",
		"kubernetes.io/vsphere-volume":  "csi.vsphere.vmware.com",
		"kubernetes.io/portworx-volume": "pxd.portworx.com",
		" kubernetes.io/aws-ebs ":       "ebs.csi.aws.com",
		"ebs.csi.aws.com":               "ebs.csi.aws.com",
		"kubernetes.io/no-provisioner":  "kubernetes.io/no-provisioner",
		"example.com/x":                 "example.com/x",
		"":                              "",
	} {
		if got := NormalizeProvisioner(in); got != want {
			t.Errorf("NormalizeProvisioner(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParamLookup(t *testing.T) {
	p := map[string]string{"MaxShares": " 4 ", "maxshares": "2", "Type": "io2"}
	if v, ok := param(p, "maxShares"); !ok || v != "4" {
		t.Errorf("got %q %v: the first key in sorted order must win deterministically", v, ok)
	}
	if v, ok := param(p, "maxshares"); !ok || v != "2" {
		t.Errorf("exact key must win, got %q", v)
	}
	if _, ok := param(nil, "type"); ok {
		t.Error("nil params")
	}
}

// minikube's hostpath serves ReadWriteMany on a one-node cluster only.
func TestMinikubeHostPathByNodeCount(t *testing.T) {
	class := sc("standard", "k8s.io/minikube-hostpath")
	for _, c := range []struct {
		nodes int
		want  Verdict
	}{{0, K}, {1, S}, {2, U}, {100, U}} {
		a := Judge{}.ReadWriteMany(class, corev1.PersistentVolumeFilesystem, Evidence{Nodes: c.nodes})
		if a.Verdict != c.want {
			t.Errorf("%d nodes: got %s (%s), want %s", c.nodes, a.Verdict, a.Reason, c.want)
		}
		if c.nodes > 1 && !strings.Contains(a.Reason, fmt.Sprintf("%d nodes", c.nodes)) {
			t.Errorf("%d nodes: reason does not say how many: %s", c.nodes, a.Reason)
		}
	}
	if a := (Judge{}).ReadWriteMany(class, corev1.PersistentVolumeBlock, Evidence{Nodes: 1}); a.Verdict != U {
		t.Errorf("Block: got %s", a.Verdict)
	}
}
