package main

import "context"

// startAGI starts the FastAGI gate. (Temporary: wired once agi.Server lands.)
func startAGI(ctx context.Context, d *daemon) error { return nil }
