package tollguard

import (
	"context"
	"fmt"
	"sort"
)

// extInfo is one extension as the store and Asterisk know it.
type extInfo struct {
	Name       string
	Store      *Extension // nil when only Asterisk has it
	InAsterisk bool
	State      string // Asterisk's endpoint state: online, offline, unknown
	Sighting   EndpointSighting
}

// inventory merges the store's extensions with Asterisk's PJSIP
// endpoints, by name, skipping ignored names. Without ARI it lists the
// store only (and the run says so). It records the endpoints' sightings.
func (r *auditRun) inventory(ctx context.Context, why string) ([]*extInfo, error) {
	env := r.env
	exts, err := env.Store.Extensions(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list extensions: %w", err)
	}
	by := map[string]*extInfo{}
	for _, e := range exts {
		by[e.Name] = &extInfo{Name: e.Name, Store: e}
	}
	if r.needAsterisk(why) {
		eps, err := pjsipEndpoints(ctx, env.Asterisk)
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(eps))
		for _, ep := range eps {
			i := by[ep.Resource]
			if i == nil {
				i = &extInfo{Name: ep.Resource}
				by[ep.Resource] = i
			}
			i.InAsterisk, i.State = true, ep.State
			names = append(names, ep.Resource)
		}
		seen, err := env.Store.SightEndpoints(ctx, names, env.now())
		if err != nil {
			return nil, fmt.Errorf("record endpoint sightings: %w", err)
		}
		for n, s := range seen {
			if i := by[n]; i != nil {
				i.Sighting = s
			}
		}
	}
	out := make([]*extInfo, 0, len(by))
	for _, i := range by {
		if !env.Settings.ignored(i.Name) {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// storeOnly reports a record in tollguard's store of a line Asterisk
// does not have (asked through ARI): there is nothing to purge, and
// storeOnlyAdvice says how to remove the record.
func (i *extInfo) storeOnly(env *AuditEnv) bool {
	return !i.InAsterisk && i.Store != nil && env.Asterisk != nil
}

func storeOnlyAdvice(name string) string {
	return "remove it with `tollguard ext rm " + name + "`"
}

func (i *extInfo) account() string {
	if i.Store != nil {
		return i.Store.Account
	}
	return ""
}
