package ingest

import (
	"sync"

	"github.com/sluicehq/sluice/featurestore"
	"github.com/sluicehq/sluice/schemas"
)

// RegistryStreams serves the registry's current streams to a Handler, with
// one decoder per stream, rebuilt when the definitions change.
func RegistryStreams(reg *featurestore.Registry) Streams {
	return &registryStreams{reg: reg}
}

type registryStreams struct {
	reg  *featurestore.Registry
	mu   sync.Mutex
	repo *featurestore.Repo
	decs map[string]*schemas.Decoder
}

func (r *registryStreams) Stream(name string) (*featurestore.Stream, *schemas.Decoder, bool) {
	repo := r.reg.Repo()
	st := repo.Streams[name]
	if st == nil {
		return nil, nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.repo != repo {
		r.repo, r.decs = repo, map[string]*schemas.Decoder{}
	}
	dec, ok := r.decs[name]
	if !ok {
		var err error
		if dec, err = schemas.NewDecoder(st.Schema); err != nil {
			// The registry validated the schema; a decoder that cannot be
			// built means the stream cannot take events.
			return nil, nil, false
		}
		r.decs[name] = dec
	}
	return st, dec, true
}
