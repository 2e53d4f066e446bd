package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"

	"taobox/chain/node"
	"taobox/chain/types"
)

var metagraphCommand = &command{
	name:    "metagraph",
	args:    "NETUID [--node URL] [--json]",
	minArgs: 1, maxArgs: 1,
	summary: "show a subnet's metagraph: stake, trust, incentive, dividends, emission per uid",
	help: "Shows the metagraph of subnet NETUID as a node sees it, like btcli's: one\n" +
		"row per uid with its hotkey and coldkey (shortened), the stake on the hotkey\n" +
		"(τ), validator trust, consensus, incentive and dividends (fractions of 1),\n" +
		"the emission of the last epoch (ρ = rao, 10^-9 τ), a * for a validator\n" +
		"permit, blocks since its last weights (UPDATED), whether it is active, and\n" +
		"its served endpoint. Subtensor no longer computes rank and trust, so\n" +
		"neither does taobox. --json prints the node's JSON (GET /v1/metagraph/N)\n" +
		"with every field, weights and bonds included, in chain units (stake and\n" +
		"emission in rao, trust and incentive as u16 of 65535, the axon an object)\n" +
		"and the header's subnet fields under \"subnet\"; docs/status.md lists them\n" +
		"beside the devnet summary's. Examples:\n\n" +
		"  taobox metagraph 1\n" +
		"  taobox metagraph 1 --node http://127.0.0.1:7744 --json | jq '.neurons[0]'",
	setup: func(fs *flag.FlagSet) func(*env) error {
		nodeURL := nodeFlag(fs)
		asJSON := fs.Bool("json", false, "print the node's JSON instead of a table")
		return func(e *env) error {
			v, err := strconv.ParseUint(e.args[0], 10, 16)
			if err != nil {
				return &usageError{"netuid", fmt.Sprintf("%q is not a subnet id (a number, for example 1)", e.args[0])}
			}
			c, err := newClient(*nodeURL)
			if err != nil {
				return err
			}
			path := fmt.Sprintf("/v1/metagraph/%d", v)
			var raw json.RawMessage
			if err := c.get(e.ctx, path, &raw); err != nil {
				return err
			}
			if *asJSON {
				_, err := e.stdout.Write(append(bytes.TrimSpace(raw), '\n'))
				return err
			}
			var mg node.MetagraphInfo
			if err := json.Unmarshal(raw, &mg); err != nil {
				return fmt.Errorf("the node's metagraph is not what this taobox expects: %v", err)
			}
			sn := mg.Subnet
			if sn == nil { // a node older than the metagraph's "subnet"
				sn = new(node.SubnetInfo)
				if err := c.get(e.ctx, fmt.Sprintf("/v1/subnet/%d", v), sn); err != nil {
					return err
				}
			}
			var b bytes.Buffer
			writeMetagraph(&b, sn, &mg)
			_, err = e.stdout.Write(b.Bytes())
			return err
		}
	},
}

// shortKey writes an address as its first 8 characters and an ellipsis.
func shortKey(a types.AccountID) string {
	s := a.String()
	return s[:8] + "…"
}

// writeMetagraph writes a btcli-like table of a subnet's metagraph.
func writeMetagraph(b *bytes.Buffer, sn *node.SubnetInfo, mg *node.MetagraphInfo) {
	share := ""
	if sn.Share != nil {
		share = fmt.Sprintf(" · share %.1f%%", float64(*sn.Share)*100/65535)
	}
	fmt.Fprintf(b, "Subnet %d · block %d · n %d · tempo %d · epoch %d (block %d) · burn τ%s%s\n",
		mg.Netuid, mg.Block, len(mg.Neurons), sn.Tempo, sn.EpochIndex, sn.LastEpoch, formatTAO(sn.Burn), share)
	var t bytes.Buffer
	tw := tabwriter.NewWriter(&t, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "UID\tHOTKEY\tCOLDKEY\tSTAKE τ\tVTRUST\tCONSENSUS\tINCENTIVE\tDIVIDENDS\tEMISSION ρ\tVPERMIT\tUPDATED\tACTIVE\tAXON\t")
	var stake, emission uint64
	for _, n := range mg.Neurons {
		permit := ""
		if n.ValidatorPermit {
			permit = "*"
		}
		active := "0"
		if n.Active {
			active = "1"
		}
		axon := "none"
		if n.Axon.Host != "" {
			axon = net.JoinHostPort(n.Axon.Host, strconv.Itoa(int(n.Axon.Port)))
		}
		updated := uint64(0)
		if mg.Block > n.LastUpdate {
			updated = mg.Block - n.LastUpdate
		}
		stake += n.Stake
		emission += n.Emission
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t\n",
			n.UID, shortKey(n.Hotkey), shortKey(n.Coldkey), formatTAOFixed(n.Stake, 4),
			u16Fraction(n.ValidatorTrust), u16Fraction(n.Consensus), u16Fraction(n.Incentive), u16Fraction(n.Dividends),
			n.Emission, permit, updated, active, axon)
	}
	fmt.Fprintf(tw, "\ttotal\t\t%s\t\t\t\t\t%d\t\t\t\t\t\n", formatTAOFixed(stake, 4), emission)
	tw.Flush()
	for _, line := range strings.SplitAfter(t.String(), "\n") {
		b.WriteString(strings.TrimRight(line, " \n"))
		if strings.HasSuffix(line, "\n") {
			b.WriteByte('\n')
		}
	}
}
