package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"

	"github.com/sluicehq/sluice/featurestore"
)

// Datasets are training sets that `sluice dataset build` registered: their
// manifests live in the registry, so every node lists them.

// registerDataset takes a manifest (POST /v1/datasets).
func (s *Server) registerDataset(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err != nil {
		writeBodyError(w, err)
		return
	}
	if !json.Valid(body) {
		writeError(w, http.StatusBadRequest, errors.New("body: not a JSON manifest"))
		return
	}
	id, err := s.registry.RegisterDataset(r.Context(), body)
	switch {
	case errors.Is(err, featurestore.ErrRegistryUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
}

// listDatasets answers GET /v1/datasets with every manifest, by id.
func (s *Server) listDatasets(w http.ResponseWriter, _ *http.Request) {
	all := s.registry.Datasets()
	out := struct {
		Datasets []json.RawMessage `json:"datasets"`
	}{Datasets: []json.RawMessage{}}
	for _, id := range slices.Sorted(maps.Keys(all)) {
		out.Datasets = append(out.Datasets, all[id])
	}
	writeJSON(w, http.StatusOK, out)
}

// getDataset answers GET /v1/datasets/{id} with one manifest.
func (s *Server) getDataset(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, ok := s.registry.Datasets()[id]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("dataset %q: not registered (GET /v1/datasets lists them)", id))
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(m))
}
