package agent

import (
	"context"
	"fmt"

	storagev1 "k8s.io/api/storage/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// PageSize bounds how many objects one live LIST page holds, so a rare live read of a large
// cluster never holds it in memory at once.
const PageSize = 500

// attachmentsOf lists, live and page by page, the VolumeAttachments of volume. It runs only
// when no Tentacle pod is running: then nothing is creating script pods, so the path is rare
// and caching every attachment of the cluster for it would cost more than it saves.
func attachmentsOf(ctx context.Context, r client.Reader, volume string) ([]storagev1.VolumeAttachment, error) {
	var out []storagev1.VolumeAttachment
	cont := ""
	for {
		var page storagev1.VolumeAttachmentList
		if err := r.List(ctx, &page, client.Limit(PageSize), client.Continue(cont)); err != nil {
			return nil, fmt.Errorf("listing VolumeAttachments: %w", err)
		}
		for _, va := range page.Items {
			if va.Spec.Source.PersistentVolumeName != nil && *va.Spec.Source.PersistentVolumeName == volume {
				out = append(out, va)
			}
		}
		if cont = page.Continue; cont == "" {
			return out, nil
		}
	}
}
