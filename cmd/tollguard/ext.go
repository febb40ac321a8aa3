package main

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tollguard/tollguard"
)

func init() { register(newExtCommand) }

// extSubcommands lets other files add `tollguard ext ...` verbs
// (add, rotate-password, restore, ...).
var extSubcommands []func(*App) *cobra.Command

func newExtCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ext",
		Short: "Manage extensions: their account, allowed networks and blocks",
	}
	cmd.AddCommand(newExtListCommand(app), newExtShowCommand(app), newExtSetCommand(app), newExtBlockCommand(app), newExtUnblockCommand(app))
	for _, f := range extSubcommands {
		cmd.AddCommand(f(app))
	}
	return cmd
}

func newExtListCommand(app *App) *cobra.Command {
	var asJSON bool
	var account string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List extensions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			if err := checkAccountFilter(cmd.Context(), db, account); err != nil {
				return err
			}
			es, err := db.Extensions(cmd.Context(), account)
			if err != nil {
				return err
			}
			if asJSON {
				vs := make([]extensionView, len(es))
				for i, e := range es {
					vs[i] = newExtensionView(e)
				}
				return app.printJSON(vs)
			}
			w := app.table("NAME", "ACCOUNT", "ALLOWED NETWORKS", "BLOCKED", "LAST SEEN")
			for _, e := range es {
				v := newExtensionView(e)
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Account, orDash(strings.Join(v.CIDRs, ",")), blockString(e.Blocked, e.BlockReason), fmtTime(e.LastSeen))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "only this account's extensions")
	addJSON(cmd, &asJSON)
	return cmd
}

func newExtShowCommand(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show EXT",
		Short: "Show an extension and its block history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			e, err := db.Extension(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			blocks, err := db.Blocks(cmd.Context(), tollguard.BlockExtension, e.Name, zeroTime)
			if err != nil {
				return err
			}
			if asJSON {
				return app.printJSON(struct {
					extensionView
					History []blockView `json:"block_history"`
				}{newExtensionView(e), newBlockViews(blocks)})
			}
			v := newExtensionView(e)
			w := app.table()
			fmt.Fprintf(w, "name\t%s\naccount\t%s\nallowed networks\t%s\nblocked\t%s\ncaller id\t%s\ndescription\t%s\nmanaged\t%s\ncreated\t%s\nlast seen\t%s\n",
				v.Name, v.Account, orDash(strings.Join(v.CIDRs, ", ")), blockString(e.Blocked, e.BlockReason+" (by "+e.BlockedBy+")"),
				orDash(e.CallerID), orDash(e.Description), yesNo(e.Managed), fmtTime(e.CreatedAt), fmtTime(e.LastSeen))
			if err := w.Flush(); err != nil {
				return err
			}
			return printBlocks(app, "block history", blocks)
		},
	}
	addJSON(cmd, &asJSON)
	return cmd
}

func newExtSetCommand(app *App) *cobra.Command {
	var account, callerID, desc string
	var cidrs, addCIDRs []string
	cmd := &cobra.Command{
		Use:   "set EXT [flags]",
		Short: "Change an extension's account, allowed networks, caller ID or description",
		Long: `Change an extension's account, allowed networks, caller ID or description.

--cidr replaces the whole access list (give every network, repeating the
flag); --add-cidr adds networks to it. The command prints the list it
leaves.`,
		Example: `  tollguard ext set 1001 --cidr 192.0.2.0/24 --cidr 2001:db8::/32
  tollguard ext set 1001 --add-cidr 198.51.100.7   # a home worker, office kept
  tollguard ext set 1001 --cidr none        # allow from anywhere`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if noLocalFlags(cmd) {
				return usagef("nothing to change: give at least one flag (see `tollguard ext set --help`)")
			}
			f := cmd.Flags()
			if f.Changed("cidr") && f.Changed("add-cidr") {
				return usagef("give --cidr (the whole list) or --add-cidr (networks to add), not both")
			}
			prefixes, err := app.parseCIDRs(cidrs)
			if err != nil {
				return err
			}
			added, err := app.parseCIDRs(addCIDRs)
			if err != nil {
				return err
			}
			if f.Changed("add-cidr") && len(added) == 0 {
				return usagef("--add-cidr needs a network; --cidr none removes the access list")
			}
			db, err := app.Store(cmd.Context())
			if err != nil {
				return err
			}
			var was, now []netip.Prefix
			if err := tollguard.ValidCallerID(callerID); err != nil {
				return err
			}
			_, err = db.UpdateExtension(cmd.Context(), args[0], func(e *tollguard.Extension) error {
				was = e.CIDRs
				if f.Changed("account") {
					e.Account = account
				}
				if f.Changed("cidr") {
					e.CIDRs = prefixes
				}
				for _, p := range added {
					if !slices.Contains(e.CIDRs, p) {
						e.CIDRs = append(slices.Clip(e.CIDRs), p)
					}
				}
				now = e.CIDRs
				if f.Changed("caller-id") {
					e.CallerID = callerID
				}
				if f.Changed("description") {
					e.Description = desc
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "extension %s updated\n", args[0])
			if f.Changed("cidr") || f.Changed("add-cidr") {
				fmt.Fprintf(app.Out, "allowed networks: %s", cidrList(now))
				if !slices.Equal(was, now) {
					fmt.Fprintf(app.Out, " (were: %s)", cidrList(was))
				}
				fmt.Fprintln(app.Out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "move the extension to this account")
	cmd.Flags().StringArrayVar(&cidrs, "cidr", nil, "the allowed source networks, replacing the list (repeat; v4 or v6; 'none' clears the list)")
	cmd.Flags().StringArrayVar(&addCIDRs, "add-cidr", nil, "an allowed source network to add to the list (repeat)")
	cmd.Flags().StringVar(&callerID, "caller-id", "", "caller ID, for audits")
	cmd.Flags().StringVar(&desc, "description", "", "description, for audits")
	textFlags(cmd, "caller-id", "description")
	return cmd
}

func newExtBlockCommand(app *App) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "block EXT --reason TEXT",
		Short: "Block an extension: every call it places is denied (emergency numbers excepted)",
		Long: `Block an extension: every call it places is denied, emergency numbers
excepted, until ` + "`tollguard unblock EXT`" + `.

With ARI configured ([ari] enabled, hangup_blocked_calls), its calls in
progress are hung up too, except emergency calls; without ARI, the
command says how many run on until their MAXSEC.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return blockByHand(cmd.Context(), app, tollguard.Block{Kind: tollguard.BlockExtension, Subject: args[0], Reason: reason},
				fmt.Sprintf("extension %s blocked; lift it with `tollguard unblock %s`", args[0], args[0]))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the block history)")
	textFlags(cmd, "reason")
	return cmd
}

func newExtUnblockCommand(app *App) *cobra.Command {
	cmd := newUnblockCommand(app)
	cmd.Use = "unblock EXT"
	cmd.Short = "Lift an extension's block (same as `tollguard unblock EXT`)"
	return cmd
}

// cidrList prints an access list; empty is anywhere.
func cidrList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "any (no access list)"
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ", ")
}

// parseCIDRs reads --cidr values, and says on stderr what it read
// otherwise than written.
func (a *App) parseCIDRs(ss []string) ([]netip.Prefix, error) {
	out, notes, err := parseCIDRs(ss)
	for _, n := range notes {
		fmt.Fprintf(a.Err, "tollguard: note: %s\n", n)
	}
	return out, err
}

// parseCIDRs reads --cidr values; notes say what was read otherwise
// than written.
func parseCIDRs(ss []string) (out []netip.Prefix, notes []string, err error) {
	for _, s := range ss {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if strings.EqualFold(part, "none") {
				continue
			}
			if part == "" {
				// An unset shell variable must not open the extension
				// to every address.
				return nil, nil, tollguard.Errorf(tollguard.EINVALID, "empty network in --cidr %q: give the networks, or none to remove the access list", s)
			}
			p, err := netip.ParsePrefix(part)
			if err != nil {
				a, aerr := netip.ParseAddr(part)
				if aerr != nil || a.Zone() != "" {
					return nil, nil, tollguard.Errorf(tollguard.EINVALID, "network %q: want a CIDR such as 192.0.2.0/24 or 2001:db8::/32, or an address (without a %%zone)", part)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			// Sources are matched unmapped: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
			host := p.Addr().Unmap()
			hostBits := p.Masked() != p
			p, ok := tollguard.UnmapPrefix(p)
			if !ok {
				return nil, nil, tollguard.Errorf(tollguard.EINVALID, "network %q: an IPv4-mapped prefix needs at least /96", part)
			}
			if hostBits {
				// An interface-style address ("192.0.2.10/24") opens the
				// whole network: say so, as the access list widens.
				p = p.Masked()
				notes = append(notes, fmt.Sprintf("%s is read as the network %s; give %s alone for that address only", part, p, host))
			}
			out = append(out, p)
		}
	}
	// A /0 is every address of one family and none of the other: no
	// access list in effect, or phones of the other family shut out.
	var all4, all6 bool
	for _, p := range out {
		all4 = all4 || (p.Bits() == 0 && p.Addr().Is4())
		all6 = all6 || (p.Bits() == 0 && p.Addr().Is6())
	}
	switch {
	case all4 && all6:
		notes = append(notes, "0.0.0.0/0 and ::/0 allow every address: the access list restricts nothing; give --cidr none for no list, or the phones' networks")
	case all4:
		notes = append(notes, "0.0.0.0/0 allows every IPv4 address and no IPv6 one: give --cidr none for no access list, or the phones' networks")
	case all6:
		notes = append(notes, "::/0 allows every IPv6 address and no IPv4 one: give --cidr none for no access list, or the phones' networks")
	}
	return out, notes, nil
}
