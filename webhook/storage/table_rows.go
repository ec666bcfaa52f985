package storage

// builtinTable is every provisioner of the team's storage-capabilities reference, each with the
// driver source its facts were read from. Rows whose answer depends on class parameters use the
// rules in table_rules.go. Order matters only for pattern rows (first match wins).
var builtinTable = []row{
	{
		names:     []string{"file.csi.azure.com", "kubernetes.io/azure-file"},
		reference: "kubernetes-sigs/azurefile-csi-driver pkg/azurefile/azurefile.go",
		decide:    fileShare("file.csi.azure.com", "Azure Files shares (SMB or NFS)"),
	},
	{
		names:     []string{"disk.csi.azure.com", "kubernetes.io/azure-disk"},
		reference: "kubernetes-sigs/azuredisk-csi-driver pkg/azureutils/azure_disk_utils.go",
		decide:    azureDisk,
	},
	{
		names:     []string{"efs.csi.aws.com"},
		reference: "kubernetes-sigs/aws-efs-csi-driver pkg/driver/controller.go",
		decide:    awsEFS,
	},
	{
		names:     []string{"ebs.csi.aws.com", "kubernetes.io/aws-ebs"},
		reference: "kubernetes-sigs/aws-ebs-csi-driver pkg/driver/controller.go",
		decide:    awsEBS,
	},
	{
		names:     []string{"filestore.csi.storage.gke.io"},
		reference: "kubernetes-sigs/gcp-filestore-csi-driver pkg/csi_driver/gcfs_driver.go",
		decide:    fileShare("filestore.csi.storage.gke.io", "Google Cloud Filestore NFS shares"),
	},
	{
		names:     []string{"pd.csi.storage.gke.io", "kubernetes.io/gce-pd"},
		reference: "kubernetes-sigs/gcp-compute-persistent-disk-csi-driver pkg/gce-pd-csi-driver/utils.go",
		decide:    gcePD,
	},
	{
		names:     []string{"nfs.csi.k8s.io"},
		reference: "kubernetes-csi/csi-driver-nfs pkg/nfs/controllerserver.go",
		decide:    fileShare("nfs.csi.k8s.io", "sub-directories of an NFS export"),
	},
	{
		names:     []string{"k8s-sigs.io/nfs-subdir-external-provisioner"},
		pattern:   "*/nfs-subdir-external-provisioner (also the Helm chart's cluster.local/<release>-nfs-subdir-external-provisioner)",
		matches:   nfsSubdirName,
		reference: "kubernetes-sigs/nfs-subdir-external-provisioner",
		decide:    fileShare("nfs-subdir-external-provisioner", "sub-directories of an NFS export (it copies the claim's access modes)"),
	},
	{
		names:     []string{"smb.csi.k8s.io"},
		reference: "kubernetes-csi/csi-driver-smb pkg/smb/smb.go",
		decide:    fileShare("smb.csi.k8s.io", "sub-directories of an SMB share"),
	},
	{
		names:     []string{"cephfs.csi.ceph.com"},
		pattern:   "<namespace>.cephfs.csi.ceph.com (Rook, OpenShift Data Foundation)",
		matches:   nsPrefixed("cephfs.csi.ceph.com"),
		reference: "ceph/ceph-csi internal/cephfs/driver.go",
		decide:    fileShare("CephFS (ceph-csi)", "CephFS subvolumes"),
	},
	{
		names:     []string{"rbd.csi.ceph.com"},
		pattern:   "<namespace>.rbd.csi.ceph.com (Rook, OpenShift Data Foundation)",
		matches:   nsPrefixed("rbd.csi.ceph.com"),
		reference: "ceph/ceph-csi internal/rbd/controllerserver.go",
		decide: byMode(
			no("Ceph RBD images carry a single-node file system: \"multi node access modes are only supported on rbd block type volumes\""),
			yes("Ceph RBD images can be mapped on many nodes at once as raw Block devices")),
	},
	{
		names:     []string{"driver.longhorn.io"},
		reference: "longhorn/longhorn-manager csi/util.go",
		decide:    longhorn,
	},
	{
		names:     []string{"rancher.io/local-path"},
		reference: "rancher/local-path-provisioner provisioner.go",
		decide: byMode(
			no("rancher.io/local-path creates a directory on one node: \"NodePath only supports ReadWriteOnce and ReadWriteOncePod (1.22+) access modes\" "+
				"(if your provisioner is configured with a sharedFileSystemPath, declare the class with annotation %s)", AnnotationAccessModes),
			no("rancher.io/local-path creates directories on one node; it has no Block volumes")),
	},
	{
		names:     []string{"k8s.io/minikube-hostpath"},
		reference: "kubernetes/minikube pkg/storage/storage_provisioner.go",
		decide:    minikubeHostPath,
	},
	{
		names:     []string{noProvisioner},
		reference: "kubernetes-sigs/sig-storage-local-static-provisioner",
		decide: func(q query) finding {
			return unknown("%s provisions nothing: the class serves whatever its pre-created PersistentVolumes declare, "+
				"and none was found", noProvisioner)
		},
	},
	{
		names: []string{"openebs.io/local", "zfs.csi.openebs.io", "local.csi.openebs.io", "jiva.csi.openebs.io",
			"cstor.csi.openebs.io", "io.openebs.csi-mayastor"},
		reference: "openebs/dynamic-localpv-provisioner, zfs-localpv, lvm-localpv, jiva-operator, cstor-csi, mayastor",
		decide:    singleNode("(OpenEBS) serves ReadWriteOnce volumes only"),
	},
	{
		names:     []string{"pxd.portworx.com", "kubernetes.io/portworx-volume"},
		reference: "libopenstorage/openstorage csi/controller.go; kubevirt/containerized-data-importer pkg/storagecapabilities/storagecapabilities.go",
		decide:    portworx,
	},
	{
		names:     []string{"csi.vsphere.vmware.com", "kubernetes.io/vsphere-volume"},
		reference: "kubernetes-sigs/vsphere-csi-driver pkg/csi/service/common/util.go",
		decide:    vsphere,
	},
	{
		names:     []string{"topolvm.io", "topolvm.cybozu.com"},
		reference: "topolvm/topolvm internal/driver/controller.go",
		decide:    singleNode("carves LVM logical volumes out of one node's disks"),
	},
	{
		names:     []string{"csi.hetzner.cloud"},
		reference: "hetznercloud/csi-driver internal/driver/helper.go",
		decide:    singleNode("attaches a Hetzner Cloud Volume to one server at a time (ReadWriteOnce, ReadWriteOncePod)"),
	},
	{
		names:     []string{"dobs.csi.digitalocean.com"},
		reference: "digitalocean/csi-digitalocean driver/controller.go",
		decide:    singleNode("attaches a DigitalOcean Volume to one Droplet at a time"),
	},
	{
		names:     []string{"linodebs.csi.linode.com"},
		reference: "linode/linode-blockstorage-csi-driver internal/driver/capabilities.go",
		decide:    singleNode("attaches a Linode Block Storage volume to one Linode at a time (ReadWriteOnce, ReadWriteOncePod)"),
	},
	{
		names:     []string{"csi.trident.netapp.io"},
		reference: "NetApp Trident docs (StorageClass attribute backendType); kubevirt/containerized-data-importer pkg/storagecapabilities/storagecapabilities.go",
		decide:    trident,
	},
	{
		names:     []string{"csi.juicefs.com"},
		reference: "juicedata/juicefs-csi-driver pkg/driver/controller.go",
		decide:    fileShare("csi.juicefs.com", "JuiceFS file systems"),
	},
	{
		names:     []string{"seaweedfs-csi-driver"},
		reference: "seaweedfs/seaweedfs-csi-driver pkg/driver/driver.go",
		decide:    fileShare("seaweedfs-csi-driver", "SeaweedFS file systems"),
	},
	{
		names:     []string{"vpc.block.csi.ibm.io"},
		reference: "IBM/ibm-vpc-block-csi-driver",
		decide:    singleNode("attaches an IBM Cloud VPC Block Storage volume to one instance at a time"),
	},
	{
		names:     []string{"vpc.file.csi.ibm.io"},
		reference: "IBM/ibm-vpc-file-csi-driver",
		decide:    fileShare("vpc.file.csi.ibm.io", "IBM Cloud VPC File Storage shares (NFS)"),
	},
	{
		names:     []string{"blockvolume.csi.oraclecloud.com"},
		reference: "oracle/oci-cloud-controller-manager pkg/csi/driver/bv_controller.go",
		decide: byMode(
			no("blockvolume.csi.oraclecloud.com attaches an OCI Block Volume with a single-node file system; ReadWriteMany exists only for Block volumes"),
			yes("blockvolume.csi.oraclecloud.com can attach an OCI Block Volume to several instances as a shareable raw Block device")),
	},
	{
		names:     []string{"fss.csi.oraclecloud.com"},
		reference: "oracle/oci-cloud-controller-manager pkg/csi/driver/fss_controller.go",
		decide:    fileShare("fss.csi.oraclecloud.com", "OCI File Storage (NFS) exports"),
	},
	{
		names:     []string{"diskplugin.csi.alibabacloud.com"},
		reference: "kubernetes-sigs/alibaba-cloud-csi-driver pkg/disk/utils.go",
		decide:    alibabaDisk,
	},
	{
		names:     []string{"nasplugin.csi.alibabacloud.com"},
		reference: "kubernetes-sigs/alibaba-cloud-csi-driver pkg/nas/controllerserver.go",
		decide:    fileShare("nasplugin.csi.alibabacloud.com", "Alibaba Cloud NAS file systems"),
	},
	{
		names:     []string{"cinder.csi.openstack.org", "kubernetes.io/cinder"},
		reference: "kubernetes/cloud-provider-openstack pkg/csi/cinder (driver.go, controllerserver.go)",
		decide:    cinder,
	},
	{
		names:     []string{"manila.csi.openstack.org"},
		reference: "kubevirt/containerized-data-importer pkg/storagecapabilities/storagecapabilities.go (CDI table)",
		decide:    fileShare("manila.csi.openstack.org", "OpenStack Manila shares"),
	},
}
