package store

import (
	"database/sql"
	"time"
)

// SetAfterChunk makes ri call f after each chunk of the deck it copies
// in has committed.
func SetAfterChunk(ri *RateImport, f func()) { ri.afterChunk = f }

// ImportChunk is how many rows one transaction of an import copies.
const ImportChunk = importChunk

// SetChunkPause sets the import's pause between chunks until the test
// ends.
func SetChunkPause(t interface{ Cleanup(func()) }, d time.Duration) {
	old := chunkPause
	chunkPause = d
	t.Cleanup(func() { chunkPause = old })
}

// SetReloadHooks makes db's reloads of the destination data call
// beforeLoad before they read, and its decisions call waiting when they
// start to wait for a reload.
func SetReloadHooks(db *DB, beforeLoad, waiting func()) {
	db.dest.mu.Lock()
	db.dest.beforeLoad, db.dest.waiting = beforeLoad, waiting
	db.dest.mu.Unlock()
}

// SetCheckpointFault makes db's checkpointer call f before each
// checkpoint and fail with its error; set it before RunCheckpointer.
func SetCheckpointFault(db *DB, f func() error) { db.ckptFault = f }

// SetPruneBatch sets how many contacts one transaction of PruneContacts
// deletes until the test ends.
func SetPruneBatch(t interface{ Cleanup(func()) }, n int) {
	old := pruneBatch
	pruneBatch = n
	t.Cleanup(func() { pruneBatch = old })
}

// HistoryCap is how many addresses, and apart user agents, an
// extension's registration history keeps.
const HistoryCap = historyCap

// SetTrimBatch sets how many values of each kind one trim of a
// registration history evicts until the test ends.
func SetTrimBatch(t interface{ Cleanup(func()) }, n int) {
	old := trimBatch
	trimBatch = n
	t.Cleanup(func() { trimBatch = old })
}

// SetAfterFloodRead makes the prune's trim of a flooded registration
// history call f between its read of a kind and its deletes until the
// test ends.
func SetAfterFloodRead(t interface{ Cleanup(func()) }, f func(kind string)) {
	afterFloodRead = f
	t.Cleanup(func() { afterFloodRead = nil })
}

// SetAfterHighRiskStage makes ReplaceHighRisk call f with its connection
// between staging the list and swapping it in, until the test ends.
func SetAfterHighRiskStage(t interface{ Cleanup(func()) }, f func(*sql.Conn)) {
	afterHighRiskStage = f
	t.Cleanup(func() { afterHighRiskStage = nil })
}
