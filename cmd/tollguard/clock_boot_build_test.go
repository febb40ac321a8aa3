package main

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestSinceBootClockBuildsOffLinux: CLOCK_BOOTTIME is in x/sys/unix for
// Linux (not macOS, nor FreeBSD on amd64), so the daemon must build
// elsewhere with a file of its own that defines sinceBootClock without it.
func TestSinceBootClockBuildsOffLinux(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "freebsd", "netbsd"} {
		ctx := build.Default
		ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = goos, "amd64", true
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatalf("%s: %v", goos, err)
		}
		defs := 0
		for _, name := range pkg.GoFiles {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == "sinceBootClock" {
					defs++
				}
			}
			if goos == "linux" {
				continue
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if s, ok := n.(*ast.SelectorExpr); ok && s.Sel.Name == "CLOCK_BOOTTIME" && !strings.HasSuffix(name, "_test.go") {
					t.Errorf("GOOS=%s builds %s, which uses unix.CLOCK_BOOTTIME (undefined there)", goos, name)
				}
				return true
			})
		}
		if defs != 1 {
			t.Errorf("GOOS=%s: %d definitions of sinceBootClock, want 1", goos, defs)
		}
	}
}
