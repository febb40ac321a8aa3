package voicemail

import (
	"os"
	"testing"
)

// FailSync makes the fsync of every file or directory for which fail
// returns an error fail with it, until the test ends.
func FailSync(t testing.TB, fail func(name string) error) {
	t.Cleanup(func() { syncFile = (*os.File).Sync })
	syncFile = func(f *os.File) error {
		if err := fail(f.Name()); err != nil {
			return err
		}
		return f.Sync()
	}
}
