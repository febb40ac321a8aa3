package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tollguard/tollguard"
)

// textFlagKey marks a flag whose value is stored as free text (a name,
// note or reason): the root's pre-run refuses control characters and
// bytes that are not UTF-8 in it, for every command alike.
const textFlagKey = "tollguard-text"

// textFlags marks cmd's flags names as free text.
func textFlags(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		if err := cmd.Flags().SetAnnotation(n, textFlagKey, []string{"true"}); err != nil {
			panic(err) // a flag renamed without its mark: caught by any test
		}
	}
}

// checkTextFlags returns an EINVALID error (exit 2) for the first text
// flag given whose value ValidText refuses.
func checkTextFlags(cmd *cobra.Command) error {
	var err error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if err != nil || f.Annotations[textFlagKey] == nil {
			return
		}
		vals := []string{f.Value.String()}
		if s, ok := f.Value.(pflag.SliceValue); ok {
			vals = s.GetSlice()
		}
		for _, v := range vals {
			if err = tollguard.ValidText("--"+f.Name, v); err != nil {
				return
			}
		}
	})
	return err
}
