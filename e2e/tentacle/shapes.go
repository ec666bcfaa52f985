package tentacle

import corev1 "k8s.io/api/core/v1"

// Shape is one way the agent chart is installed in the wild (README "Supported agent shapes").
type Shape struct {
	Name string
	// Agent has the generation, storage and access modes of the shape; the caller sets its
	// Namespace and Release (and NameOverride, NodeSelector).
	Agent Agent
	// Pinned: the claim is ReadWriteOnce, so script pods must be pinned to the Tentacle's node.
	Pinned bool
}

// Shapes are every chart generation in each of its storage modes. rwoClass and rwxClass name
// the StorageClasses of the custom-class shapes: one that serves ReadWriteOnce only and one
// that can serve ReadWriteMany. The chart v3 default shapes need a default StorageClass.
func Shapes(rwoClass, rwxClass string) []Shape {
	rwo := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	rwx := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
	custom := func(a Agent, class string) Agent {
		a.Storage, a.StorageClass = StorageClass, class
		return a
	}
	return []Shape{
		{"v1-nfs", Agent{Generation: 1, Storage: StorageNFS}, false},
		{"v2-nfs", Agent{Generation: 2, Storage: StorageNFS}, false},
		{"v2-class-rwo", custom(Agent{Generation: 2, AccessModes: rwo}, rwoClass), true},
		{"v2-class-rwx", custom(Agent{Generation: 2, AccessModes: rwx}, rwxClass), false},
		{"v3-default-rwo", Agent{Generation: 3, Storage: StorageDefaultClass}, true},
		{"v3-nfs", Agent{Generation: 3, Storage: StorageNFS, AccessModes: rwx}, false},
		{"v3-class-rwx", custom(Agent{Generation: 3, AccessModes: rwx}, rwxClass), false},
		{"v3-worker", Agent{Generation: 3, Storage: StorageDefaultClass, Worker: true}, true},
	}
}
