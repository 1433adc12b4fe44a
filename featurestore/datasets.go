package featurestore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
)

// KindDataset is the registry record kind of a training set's manifest.
// Datasets share the registry's log with the definitions, so every node
// lists them, but they are not part of a Repo: applying a feature
// repository never removes one.
const KindDataset = "dataset"

// splitDatasets moves dataset records out of recs into the registry's
// dataset table (a nil value removes one), returning the other records.
func (r *Registry) splitDatasets(recs []Record) []Record {
	out := recs[:0:0]
	for _, rec := range recs {
		id, ok := strings.CutPrefix(rec.Key, KindDataset+"/")
		if !ok {
			out = append(out, rec)
			continue
		}
		if len(rec.Value) == 0 {
			delete(r.datasets, id)
		} else {
			r.datasets[id] = rec.Value
		}
	}
	return out
}

// RegisterDataset stores a dataset's manifest (JSON with at least an
// "id") in the registry log.
func (r *Registry) RegisterDataset(ctx context.Context, manifest []byte) (string, error) {
	var head struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(manifest, &head); err != nil {
		return "", fmt.Errorf("dataset manifest: %w", err)
	}
	if head.ID == "" || strings.ContainsAny(head.ID, "/ ") {
		return "", fmt.Errorf("dataset manifest: id %q must be a non-empty name without '/' or spaces", head.ID)
	}
	if err := r.log.Append(ctx, []Record{{Key: RecordKey(KindDataset, head.ID), Value: manifest}}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrRegistryUnavailable, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.datasets[head.ID] = append([]byte(nil), manifest...)
	return head.ID, nil
}

// Datasets returns the registered datasets' manifests, by id.
func (r *Registry) Datasets() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.datasets)
}
