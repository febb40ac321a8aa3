package main

import "context"

// startARI starts the ARI listener when [ari] is enabled, and sets
// d.asterisk and d.channelAlive. (Seam for the ARI listener.)
func startARI(ctx context.Context, d *daemon) error { return nil }
