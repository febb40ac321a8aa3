package store

// SetAfterChunk makes ri call f after each chunk of the deck it copies
// in has committed.
func SetAfterChunk(ri *RateImport, f func()) { ri.afterChunk = f }

// ImportChunk is how many rows one transaction of an import copies.
const ImportChunk = importChunk
